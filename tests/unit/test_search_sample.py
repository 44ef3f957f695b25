"""Tests for the search-space functions of tune_ckpt.search: bounds, rounding, seeds,
sample_from, nested spaces and validation."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tune_ckpt import search
from tune_ckpt.search import (
    choice,
    generate_configs,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)

N = 2000


def _draw(domain: Any, seed: int = 0, n: int = N) -> list[Any]:
    return [c["v"] for c in generate_configs({"v": domain}, num_samples=n, seed=seed)]


@pytest.mark.parametrize(
    "domain",
    [
        uniform(-1, 2),
        quniform(0, 1, 0.1),
        loguniform(1e-3, 10),
        qloguniform(0.5, 20, 0.5),
        randn(3, 2),
        qrandn(0, 1, 0.25),
        randint(-3, 4),
        lograndint(1, 1000),
        qrandint(0, 20, 5),
        qlograndint(4, 400, 4),
        choice(["a", 1, None]),
    ],
    ids=lambda d: type(d).__name__,
)
def test_every_domain_is_valid_and_reproducible(domain: Any) -> None:
    """Each sampling function draws only values its domain allows; a seed repeats them
    and another seed does not."""
    values = _draw(domain, seed=11)
    assert all(domain.is_valid(v) for v in values)
    assert values == _draw(domain, seed=11)
    assert values != _draw(domain, seed=12)


def test_quniform_rounds_to_clean_multiples_and_includes_upper() -> None:
    """quniform values are multiples of q written as the decimal they are, both bounds hit."""
    values = _draw(quniform(0, 1, 0.1))
    assert set(values) == {round(k / 10, 1) for k in range(11)}
    assert 0.3 in values  # not 0.30000000000000004


def test_qrandint_upper_is_inclusive_and_values_are_multiples() -> None:
    """qrandint(0, 20, 5) gives 0, 5, 10, 15 and 20, each about equally often."""
    values = _draw(qrandint(0, 20, 5))
    assert set(values) == {0, 5, 10, 15, 20}
    assert all(isinstance(v, int) for v in values)
    assert min(values.count(k) for k in (0, 5, 10, 15, 20)) > N / 5 * 0.8
    assert set(_draw(qrandint(1, 3))) == {1, 2, 3}  # q=1: upper inclusive too


def test_qrandint_uses_multiples_inside_bounds_that_are_not_multiples() -> None:
    """Integer q variants need not have bounds that are multiples of q."""
    assert set(_draw(qrandint(1, 10, 3))) == {3, 6, 9}
    assert set(_draw(qlograndint(5, 21, 5))) == {5, 10, 15, 20}


def test_randint_and_lograndint_upper_is_exclusive() -> None:
    """randint and lograndint never reach their upper bound, and reach the one below."""
    assert set(_draw(randint(0, 3))) == {0, 1, 2}
    values = _draw(lograndint(1, 4))
    assert set(values) == {1, 2, 3}


def test_log_domains_spread_over_decades() -> None:
    """Log domains give each decade a fair share and stay within bounds."""
    for domain in (loguniform(1e-4, 1), lograndint(1, 10**4), qloguniform(1e-4, 1, 1e-4)):
        values = _draw(domain)
        decades = [math.floor(math.log10(v)) for v in values]
        counts = [decades.count(d) for d in sorted(set(decades))]
        assert len(counts) == 4, (domain, counts)
        assert min(counts) > N / 4 * 0.6, (domain, counts)


def test_randn_has_its_mean_and_sd() -> None:
    """randn(mean, sd) has that mean and spread; qrandn rounds to q."""
    values = _draw(randn(10, 2))
    mean = sum(values) / N
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / N)
    assert abs(mean - 10) < 0.2 and abs(sd - 2) < 0.2
    assert all(abs(v / 0.25 - round(v / 0.25)) < 1e-9 for v in _draw(qrandn(0, 1, 0.25)))


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: quniform(0, 1, 0), "q=0"),
        (lambda: quniform(0.05, 1, 0.1), "lower=0.05"),
        (lambda: quniform(0, 1.05, 0.1), "upper=1.05"),
        (lambda: quniform(1, 0, 0.1), "lower=1, upper=0"),
        (lambda: qloguniform(0, 1, 0.1), "lower=0.0"),
        (lambda: loguniform(-1, 1), "lower=-1"),
        (lambda: lograndint(0, 10), "lower=0"),
        (lambda: qlograndint(0, 10, 2), "lower=0"),
        (lambda: qrandint(0, 10, -1), "q=-1"),
        (lambda: qrandint(1, 2, 5), "no multiple of q"),
        (lambda: randn(0, 0), "sd=0.0"),
        (lambda: qrandn(0, 1, 0), "q=0"),
        (lambda: randint(0.5, 3), "lower=0.5"),
        (lambda: uniform(0, math.inf), "upper=inf"),
        (lambda: uniform("0", 1), "lower='0'"),
        (lambda: sample_from(lambda a, b: a), "no argument or one"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(make: Any, needle: str) -> None:
    """Bad bounds, q <= 0, log bounds <= 0 and bad functions raise ValueError naming them."""
    with pytest.raises(ValueError) as info:
        make()
    assert needle in str(info.value)


def test_sample_from_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="sample_from"):
        sample_from(3)  # type: ignore[arg-type]


def test_sample_from_sees_resolved_values_in_every_style() -> None:
    """sample_from functions read grid values, drawn values and each other's results, as
    spec.config.x, spec.config["x"], config["x"] or with no argument."""
    space = {
        "a": grid_search([1, 2]),
        "b": randint(10, 20),
        "opt": {"lr": uniform(0, 1)},
        "d": sample_from(lambda spec: spec.config.c * 2),  # needs c first
        "c": sample_from(lambda spec: spec.config.a + spec.config["b"]),
        "e": sample_from(lambda config: config["opt"]["lr"] * 10),
        "f": sample_from(lambda: "constant"),
    }
    configs = generate_configs(space, num_samples=3, seed=4)
    assert len(configs) == 6
    for c in configs:
        assert c["c"] == c["a"] + c["b"]
        assert c["d"] == 2 * c["c"]
        assert c["e"] == c["opt"]["lr"] * 10
        assert c["f"] == "constant"


def test_sample_from_cycle_and_errors_are_named() -> None:
    """A cycle between sample_from functions, or one that raises, names the paths."""
    cycle = {"x": sample_from(lambda s: s.config.y), "y": sample_from(lambda s: s.config.x)}
    with pytest.raises(ValueError, match=r"cycle: param_space\['x'\] reads param_space\['y'\]"):
        generate_configs(cycle)
    broken = {"x": sample_from(lambda s: s.config.missing)}
    with pytest.raises(ValueError, match=r"sample_from at param_space\['x'\] raised"):
        generate_configs(broken)


def test_nested_spaces_grids_and_domains_in_dicts_lists_and_tuples() -> None:
    """Grids and every kind of domain resolve inside nested dicts, lists and tuples; tuples
    stay tuples; a grid deep inside a dict multiplies the configs."""
    space = {
        "model": {
            "layers": [qrandint(8, 64, 8), {"act": grid_search(["relu", "tanh"])}],
            "shape": (randint(1, 5), "fixed"),
            "opt": {"name": "adam", "lr": qloguniform(1e-4, 1e-1, 1e-4), "b": grid_search([1, 2])},
        }
    }
    configs = generate_configs(space, num_samples=2, seed=3)
    assert len(configs) == 8
    assert [(c["model"]["layers"][1]["act"], c["model"]["opt"]["b"]) for c in configs[:4]] == [
        ("relu", 1),
        ("relu", 2),
        ("tanh", 1),
        ("tanh", 2),
    ]
    for c in configs:
        model = c["model"]
        assert model["layers"][0] % 8 == 0 and 8 <= model["layers"][0] <= 64
        assert isinstance(model["shape"], tuple) and model["shape"][1] == "fixed"
        assert 1 <= model["shape"][0] < 5
        assert 1e-4 <= model["opt"]["lr"] <= 1e-1 and model["opt"]["name"] == "adam"
    assert isinstance(space["model"]["shape"], tuple)  # the space is not modified


def test_domains_inside_grid_values_are_drawn() -> None:
    """A grid value holding a domain (one grid choosing between two ranges) is resolved."""
    space = {"opt": grid_search([{"lr": uniform(0, 1)}, {"lr": uniform(5, 6)}])}
    low, high = generate_configs(space, seed=0)
    assert 0 <= low["opt"]["lr"] <= 1 and 5 <= high["opt"]["lr"] <= 6


def test_top_level_exports() -> None:
    """Every Ray Tune sampling function is importable from tune_ckpt itself."""
    import tune_ckpt

    for name in ("sample_from", "quniform", "qloguniform", "randn", "qrandn", "lograndint"):
        assert getattr(tune_ckpt, name) is getattr(search, name)
    assert tune_ckpt.qrandint is search.qrandint and tune_ckpt.qlograndint is search.qlograndint
