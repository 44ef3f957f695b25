"""Search spaces: grid and random domains, expanded into trial configs.

``num_samples`` repeats the whole grid, as in Ray Tune: a space with a 3-value grid and
``num_samples=2`` gives 6 trials, each resolving its random domains independently.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class Domain:
    """A random search dimension; ``sample`` draws one value."""

    def sample(self, rng: random.Random) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Domain):
    categories: tuple[Any, ...]

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.categories)


@dataclass(frozen=True)
class Uniform(Domain):
    lower: float
    upper: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.lower, self.upper)


@dataclass(frozen=True)
class LogUniform(Domain):
    lower: float
    upper: float

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.lower), math.log(self.upper)))


@dataclass(frozen=True)
class RandInt(Domain):
    lower: int
    upper: int  # exclusive, as in Ray Tune

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(self.lower, self.upper)


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


def _check_bounds(name: str, lower: float, upper: float) -> None:
    if not lower < upper:
        raise ValueError(f"{name}(lower={lower!r}, upper={upper!r}) is invalid: need lower < upper")


def uniform(lower: float, upper: float) -> Uniform:
    """Sample a float uniformly in ``[lower, upper]``."""
    _check_bounds("uniform", lower, upper)
    return Uniform(float(lower), float(upper))


def loguniform(lower: float, upper: float) -> LogUniform:
    """Sample a float whose logarithm is uniform in ``[log(lower), log(upper)]``."""
    _check_bounds("loguniform", lower, upper)
    if lower <= 0:
        raise ValueError(f"loguniform(lower={lower!r}) is invalid: bounds must be > 0")
    return LogUniform(float(lower), float(upper))


def randint(lower: int, upper: int) -> RandInt:
    """Sample an int in ``[lower, upper)``."""
    _check_bounds("randint", lower, upper)
    return RandInt(int(lower), int(upper))


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def _leaves(space: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Paths to every grid or domain leaf, in a stable (insertion) order."""
    if _is_grid(space) or isinstance(space, Domain):
        return [(prefix, space)]
    found: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(space, dict):
        for key, value in space.items():
            found.extend(_leaves(value, (*prefix, key)))
    elif isinstance(space, list):
        for index, value in enumerate(space):
            found.extend(_leaves(value, (*prefix, index)))
    return found


def _copy_tree(space: Any) -> Any:
    if isinstance(space, dict):
        return {k: _copy_tree(v) for k, v in space.items()}
    if isinstance(space, list):
        return [_copy_tree(v) for v in space]
    return space


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def generate_configs(
    param_space: dict[str, Any] | None, num_samples: int = 1, seed: int | None = None
) -> list[dict[str, Any]]:
    """Expand a search space into concrete trial configs.

    The outer loop is over samples, the inner over the grid's cross product, so the grid
    order repeats within each sample.
    """
    space = param_space or {}
    if not isinstance(space, dict):
        raise TypeError(f"param_space={space!r} is invalid: a dict or None")
    rng = random.Random(seed)
    leaves = _leaves(space)
    grids = [(path, leaf["grid_search"]) for path, leaf in leaves if _is_grid(leaf)]
    domains = [(path, leaf) for path, leaf in leaves if isinstance(leaf, Domain)]
    configs = []
    for _ in range(num_samples):
        for combo in itertools.product(*(values for _, values in grids)):
            config = _copy_tree(space)
            for (path, _), value in zip(grids, combo, strict=True):
                config = _set(config, path, value)
            for path, domain in domains:
                config = _set(config, path, domain.sample(rng))
            configs.append(config)
    return configs
