"""Search-space domains: what each of Ray Tune's sampling functions draws.

Every factory validates its arguments when it is called, so a bad space fails where it is
written, not in the middle of a sweep. Domains draw from a ``random.Random`` handed to
``sample``; the variant generator owns it, so a seed reproduces a whole sweep.

The ``q`` variants round to a multiple of ``q`` and include the upper bound, as Ray Tune
documents. Float ``q`` variants need bounds that are multiples of ``q`` (as in Ray Tune);
integer ones use the multiples of ``q`` inside the bounds. Quantized floats are computed in
decimal (``quniform(0, 1, 0.1)`` gives ``0.3``, not ``0.30000000000000004``).
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class Domain:
    """A random search dimension; ``sample`` draws one value."""

    def sample(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` is one this domain can produce."""
        raise NotImplementedError


def _multiple(k: int, q: float) -> float:
    """``k * q`` without binary noise: ``3 * 0.1`` is ``0.3``."""
    return float(Decimal(repr(float(q))) * k)


def _clamped_multiple(k: int, lower: float, upper: float, q: float) -> float:
    """``k * q``, kept between the bounds (which are multiples of ``q``)."""
    return _multiple(min(max(k, round(lower / q)), round(upper / q)), q)


def _in_bounds(value: Any, lower: float, upper: float) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and lower <= value <= upper
    )


@dataclass(frozen=True)
class Choice(Domain):
    categories: tuple[Any, ...]

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.categories)

    def is_valid(self, value: Any) -> bool:
        return value in self.categories


@dataclass(frozen=True)
class Uniform(Domain):
    lower: float
    upper: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.lower, self.upper)

    def is_valid(self, value: Any) -> bool:
        return _in_bounds(value, self.lower, self.upper)


@dataclass(frozen=True)
class LogUniform(Domain):
    lower: float
    upper: float

    def sample(self, rng: random.Random) -> float:
        value = math.exp(rng.uniform(math.log(self.lower), math.log(self.upper)))
        return min(max(value, self.lower), self.upper)  # exp(log(x)) may round past x

    def is_valid(self, value: Any) -> bool:
        return _in_bounds(value, self.lower, self.upper)


@dataclass(frozen=True)
class QUniform(Domain):
    """A multiple of ``q`` in ``[lower, upper]`` (both bounds are multiples of ``q``)."""

    lower: float
    upper: float
    q: float

    def sample(self, rng: random.Random) -> float:
        k = round(rng.uniform(self.lower, self.upper) / self.q)
        return _clamped_multiple(k, self.lower, self.upper, self.q)

    def is_valid(self, value: Any) -> bool:
        return _in_bounds(value, self.lower, self.upper) and math.isclose(
            value / self.q, round(value / self.q), abs_tol=1e-9
        )


@dataclass(frozen=True)
class QLogUniform(Domain):
    """Log-uniform in ``[lower, upper]``, rounded to a multiple of ``q``."""

    lower: float
    upper: float
    q: float

    def sample(self, rng: random.Random) -> float:
        x = math.exp(rng.uniform(math.log(self.lower), math.log(self.upper)))
        k = round(x / self.q)
        return _clamped_multiple(k, self.lower, self.upper, self.q)

    def is_valid(self, value: Any) -> bool:
        return QUniform(self.lower, self.upper, self.q).is_valid(value)


@dataclass(frozen=True)
class Normal(Domain):
    mean: float
    sd: float

    def sample(self, rng: random.Random) -> float:
        return rng.normalvariate(self.mean, self.sd)

    def is_valid(self, value: Any) -> bool:
        return _in_bounds(value, -math.inf, math.inf)


@dataclass(frozen=True)
class QNormal(Domain):
    mean: float
    sd: float
    q: float

    def sample(self, rng: random.Random) -> float:
        return _multiple(round(rng.normalvariate(self.mean, self.sd) / self.q), self.q)

    def is_valid(self, value: Any) -> bool:
        return _in_bounds(value, -math.inf, math.inf)


@dataclass(frozen=True)
class RandInt(Domain):
    lower: int
    upper: int  # exclusive, as in Ray Tune

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(self.lower, self.upper)

    def is_valid(self, value: Any) -> bool:
        return isinstance(value, int) and self.lower <= value < self.upper


@dataclass(frozen=True)
class LogRandInt(Domain):
    lower: int
    upper: int  # exclusive, as in Ray Tune

    def sample(self, rng: random.Random) -> int:
        x = math.exp(rng.uniform(math.log(self.lower), math.log(self.upper)))
        return min(max(math.floor(x), self.lower), self.upper - 1)

    def is_valid(self, value: Any) -> bool:
        return RandInt(self.lower, self.upper).is_valid(value)


@dataclass(frozen=True)
class QRandInt(Domain):
    """Each multiple of ``q`` in ``[lower, upper]`` (upper inclusive) equally likely."""

    lower: int
    upper: int
    q: int

    def sample(self, rng: random.Random) -> int:
        return rng.randint(-(-self.lower // self.q), self.upper // self.q) * self.q

    def is_valid(self, value: Any) -> bool:
        return isinstance(value, int) and self.lower <= value <= self.upper and value % self.q == 0


@dataclass(frozen=True)
class QLogRandInt(Domain):
    """Log-uniform in the multiples of ``q`` within ``[lower, upper]`` (upper inclusive)."""

    lower: int
    upper: int
    q: int

    def sample(self, rng: random.Random) -> int:
        k_low, k_high = -(-self.lower // self.q), self.upper // self.q
        x = math.exp(rng.uniform(math.log(k_low * self.q), math.log(k_high * self.q)))
        return min(max(round(x / self.q), k_low), k_high) * self.q

    def is_valid(self, value: Any) -> bool:
        return QRandInt(self.lower, self.upper, self.q).is_valid(value)


@dataclass(frozen=True)
class Function(Domain):
    """``sample_from``: a value computed by ``func`` from the config resolved so far."""

    func: Callable[..., Any]
    pass_spec: bool

    def sample(self, rng: random.Random) -> Any:  # resolved by the variant generator
        raise TypeError("sample_from values are resolved with the config: use call(spec)")

    def call(self, spec: Any) -> Any:
        return self.func(spec) if self.pass_spec else self.func()

    def is_valid(self, value: Any) -> bool:
        return True  # user-defined: anything goes


# -- factories (Ray Tune's names and arguments) ------------------------------------------------


def _number(func: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{func}({field}={value!r}) is invalid: a finite number")
    return float(value)


def _integer(func: str, field: str, value: Any) -> int:
    number = _number(func, field, value)
    if number != int(number):
        raise ValueError(f"{func}({field}={value!r}) is invalid: an integer")
    return int(number)


def _check_bounds(name: str, lower: float, upper: float) -> None:
    if not lower < upper:
        raise ValueError(f"{name}(lower={lower!r}, upper={upper!r}) is invalid: need lower < upper")


def _check_positive(name: str, field: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name}({field}={value!r}) is invalid: must be > 0")


def _check_multiple(name: str, field: str, value: float, q: float) -> None:
    if not math.isclose(value / q, round(value / q), rel_tol=1e-9, abs_tol=1e-9):
        raise ValueError(
            f"{name}({field}={value!r}, q={q!r}) is invalid: {field} must be a multiple of q"
        )


def grid_search(values: Sequence[Any]) -> dict[str, Any]:
    """Try every value; combined grids give the cross product."""
    values = list(values)
    if not values:
        raise ValueError("grid_search(values=[]) is invalid: give at least one value")
    # The dict form is what Ray Tune uses, so spaces written for Ray Tune keep working.
    return {"grid_search": values}


def choice(categories: Sequence[Any]) -> Choice:
    """Sample one of ``categories`` uniformly."""
    categories = tuple(categories)
    if not categories:
        raise ValueError("choice(categories=[]) is invalid: give at least one category")
    return Choice(categories)


def uniform(lower: float, upper: float) -> Uniform:
    """Sample a float uniformly in ``[lower, upper]``."""
    lo, hi = _number("uniform", "lower", lower), _number("uniform", "upper", upper)
    _check_bounds("uniform", lower, upper)
    return Uniform(lo, hi)


def quniform(lower: float, upper: float, q: float) -> QUniform:
    """Sample uniformly in ``[lower, upper]`` and round to a multiple of ``q`` (upper
    inclusive); both bounds must be multiples of ``q``."""
    lo, hi = _number("quniform", "lower", lower), _number("quniform", "upper", upper)
    step = _number("quniform", "q", q)
    _check_bounds("quniform", lower, upper)
    _check_positive("quniform", "q", step)
    _check_multiple("quniform", "lower", lo, step)
    _check_multiple("quniform", "upper", hi, step)
    return QUniform(lo, hi, step)


def loguniform(lower: float, upper: float, base: float = 10) -> LogUniform:
    """Sample a float whose logarithm is uniform in ``[log(lower), log(upper)]``. ``base``
    is accepted for Ray Tune's signature; it does not change the distribution."""
    lo, hi = _number("loguniform", "lower", lower), _number("loguniform", "upper", upper)
    _check_bounds("loguniform", lower, upper)
    if lo <= 0:
        raise ValueError(f"loguniform(lower={lower!r}) is invalid: bounds must be > 0")
    return LogUniform(lo, hi)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> QLogUniform:
    """``loguniform`` rounded to a multiple of ``q`` (upper inclusive); the bounds must be
    > 0 and multiples of ``q``."""
    lo, hi = _number("qloguniform", "lower", lower), _number("qloguniform", "upper", upper)
    step = _number("qloguniform", "q", q)
    _check_bounds("qloguniform", lower, upper)
    _check_positive("qloguniform", "lower", lo)
    _check_positive("qloguniform", "q", step)
    _check_multiple("qloguniform", "lower", lo, step)
    _check_multiple("qloguniform", "upper", hi, step)
    return QLogUniform(lo, hi, step)


def randn(mean: float = 0.0, sd: float = 1.0) -> Normal:
    """Sample from a normal distribution with ``mean`` and standard deviation ``sd``."""
    mu, sigma = _number("randn", "mean", mean), _number("randn", "sd", sd)
    _check_positive("randn", "sd", sigma)
    return Normal(mu, sigma)


def qrandn(mean: float, sd: float, q: float) -> QNormal:
    """``randn`` rounded to a multiple of ``q``."""
    mu, sigma = _number("qrandn", "mean", mean), _number("qrandn", "sd", sd)
    step = _number("qrandn", "q", q)
    _check_positive("qrandn", "sd", sigma)
    _check_positive("qrandn", "q", step)
    return QNormal(mu, sigma, step)


def randint(lower: int, upper: int) -> RandInt:
    """Sample an int in ``[lower, upper)``."""
    lo, hi = _integer("randint", "lower", lower), _integer("randint", "upper", upper)
    _check_bounds("randint", lower, upper)
    return RandInt(lo, hi)


def lograndint(lower: int, upper: int, base: float = 10) -> LogRandInt:
    """Sample an int in ``[lower, upper)`` log-uniformly; ``lower`` must be > 0."""
    lo, hi = _integer("lograndint", "lower", lower), _integer("lograndint", "upper", upper)
    _check_bounds("lograndint", lower, upper)
    _check_positive("lograndint", "lower", lo)
    return LogRandInt(lo, hi)


def _int_q(name: str, lower: int, upper: int, q: int) -> None:
    _check_bounds(name, lower, upper)
    _check_positive(name, "q", q)
    if -(-lower // q) > upper // q:
        raise ValueError(
            f"{name}(lower={lower!r}, upper={upper!r}, q={q!r}) is invalid: "
            "no multiple of q lies between the bounds"
        )


def qrandint(lower: int, upper: int, q: int = 1) -> QRandInt:
    """Sample a multiple of ``q`` in ``[lower, upper]``: the upper bound is inclusive."""
    lo, hi = _integer("qrandint", "lower", lower), _integer("qrandint", "upper", upper)
    step = _integer("qrandint", "q", q)
    _int_q("qrandint", lo, hi, step)
    return QRandInt(lo, hi, step)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> QLogRandInt:
    """Sample log-uniformly and round to a multiple of ``q`` in ``[lower, upper]`` (upper
    inclusive); ``lower`` must be > 0."""
    lo, hi = _integer("qlograndint", "lower", lower), _integer("qlograndint", "upper", upper)
    step = _integer("qlograndint", "q", q)
    _check_positive("qlograndint", "lower", lo)
    _int_q("qlograndint", lo, hi, step)
    return QLogRandInt(lo, hi, step)


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed per trial by ``func``, called with no argument or with the trial's
    ``spec``: ``spec.config`` (also ``spec`` itself) reads the values resolved so far, by
    key or attribute (``spec.config.a``, ``spec["a"]``), so one value can depend on another.
    """
    if not callable(func):
        raise TypeError(f"sample_from(func={func!r}) is invalid: a callable")
    signature = inspect.signature(func)
    for args in ((None,), ()):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return Function(func, pass_spec=bool(args))
    raise ValueError(
        f"sample_from(func={func!r}) is invalid: a callable taking no argument or one (the spec)"
    )
