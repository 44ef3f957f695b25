"""Expanding a search space into trial configs: grids, random domains, ``sample_from``,
nested dicts, lists and tuples, and preset points.

``num_samples`` repeats the whole grid, as in Ray Tune: a space with a 3-value grid and
``num_samples=2`` gives 6 trials, each resolving its random domains independently. The
outer loop is over samples, the inner over the grids' cross product with the first grid
(in the space's insertion order) varying slowest.

Within one config, grid values are placed first, then random domains are drawn in the
space's insertion order from one ``random.Random``, then ``sample_from`` functions run, in
as many passes as their dependencies on each other need. ``VariantPlan.variant(i, rng)``
builds the i-th config on its own, so a generator can stop after any config and resume
from its index and the generator's state.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tune_ckpt.search.sample import Domain, Function

logger = logging.getLogger(__name__)

Path = tuple[Any, ...]


def is_grid(value: Any) -> bool:
    """``{"grid_search": [...]}``, Ray Tune's form of a grid."""
    return isinstance(value, dict) and set(value) == {"grid_search"}


def leaves(space: Any, prefix: Path = ()) -> list[tuple[Path, Any]]:
    """Paths to every grid or domain leaf, in a stable (insertion) order."""
    if is_grid(space) or isinstance(space, Domain):
        return [(prefix, space)]
    found: list[tuple[Path, Any]] = []
    if isinstance(space, dict):
        for key, value in space.items():
            found.extend(leaves(value, (*prefix, key)))
    elif isinstance(space, list | tuple):
        for index, value in enumerate(space):
            found.extend(leaves(value, (*prefix, index)))
    return found


def where(path: Path, root: str = "param_space") -> str:
    """``param_space['a'][0]``: a path as the user would index it."""
    return root + "".join(f"[{key!r}]" for key in path)


def copy_tree(space: Any) -> Any:
    """A copy of the dicts and lists (tuples become lists until ``restore_tuples``)."""
    if isinstance(space, dict):
        return {k: copy_tree(v) for k, v in space.items()}
    if isinstance(space, list | tuple):
        return [copy_tree(v) for v in space]
    return space


def restore_tuples(tree: Any, original: Any) -> Any:
    """``tree`` with the tuples of ``original`` (which ``copy_tree`` made lists) back."""
    if isinstance(original, dict) and isinstance(tree, dict):
        for key, value in original.items():
            if key in tree:
                tree[key] = restore_tuples(tree[key], value)
        return tree
    if isinstance(original, list | tuple) and isinstance(tree, list):
        items = [restore_tuples(t, o) for t, o in zip(tree, original, strict=False)]
        return tuple(items) if isinstance(original, tuple) else items
    return tree


def set_path(tree: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


class _Unresolved(Exception):
    """A ``sample_from`` function read a value that is not resolved yet."""

    def __init__(self, path: Path) -> None:
        super().__init__(where(path, "config"))
        self.path = path


class SpecView(Mapping[str, Any]):
    """What a ``sample_from`` function sees: the config resolved so far, by key or by
    attribute; ``spec.config`` is the same view (Ray Tune passes a spec with ``.config``).
    Reading a value that is still a domain defers the function to a later pass."""

    def __init__(self, node: Mapping[Any, Any], path: Path = (), is_spec: bool = False) -> None:
        self._node = node
        self._path = path
        self._is_spec = is_spec

    def __getitem__(self, key: Any) -> Any:
        value = self._node[key]
        path = (*self._path, key)
        if is_grid(value) or isinstance(value, Domain):
            raise _Unresolved(path)
        if isinstance(value, dict):
            return SpecView(value, path)
        if isinstance(value, list | tuple) and leaves(value):
            raise _Unresolved(path)
        return value

    def __iter__(self) -> Iterator[Any]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._is_spec and name == "config":
            return SpecView(self._node, self._path)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __repr__(self) -> str:
        return f"SpecView({dict(self._node)!r})"


def resolve_domains(config: Any, rng: random.Random) -> Any:
    """Draw every domain left in ``config`` (in place), then run ``sample_from`` functions
    until all are resolved; a cycle between them raises ValueError naming the paths."""
    functions: list[tuple[Path, Function]] = []
    for path, leaf in leaves(config):
        if is_grid(leaf):
            raise ValueError(
                f"{where(path)} is a grid_search inside a grid_search value or a preset "
                "point: grids can only be keys of the param_space"
            )
        if isinstance(leaf, Function):
            functions.append((path, leaf))
        else:
            config = set_path(config, path, leaf.sample(rng))
    pending = functions
    while pending:
        deferred: list[tuple[Path, Function]] = []
        waits: list[str] = []
        for path, function in pending:
            try:
                value = function.call(SpecView(config, is_spec=True))
            except _Unresolved as exc:
                deferred.append((path, function))
                waits.append(f"{where(path)} reads {where(exc.path)}")
                continue
            except Exception as exc:
                raise ValueError(
                    f"sample_from at {where(path)} raised {type(exc).__name__}: {exc}"
                ) from exc
            if isinstance(value, Domain) and not isinstance(value, Function):
                value = value.sample(rng)  # a function may pick the domain to draw from
            config = set_path(config, path, value)
        if len(deferred) == len(pending):
            raise ValueError(
                "sample_from functions depend on each other in a cycle: " + "; ".join(waits)
            )
        pending = deferred
    return config


def _preset_assignments(
    space: Mapping[Any, Any], preset: Mapping[Any, Any], label: str, prefix: Path = ()
) -> list[tuple[Path, Any]]:
    """Where a preset point's values go: its nested dicts follow the space's dicts."""
    found: list[tuple[Path, Any]] = []
    for key, value in preset.items():
        path = (*prefix, key)
        if key not in space:
            raise ValueError(
                f"{label} key {where(path, 'config')} is not in the param_space: a preset point "
                "can only fix values the space defines"
            )
        target = space[key]
        if isinstance(value, dict) and isinstance(target, dict) and not is_grid(target):
            found.extend(_preset_assignments(target, value, label, path))
            continue
        if is_grid(target):
            valid = value in target["grid_search"]
        elif isinstance(target, Domain):
            valid = target.is_valid(value)
        else:
            valid = bool(value == target)
        if not valid:
            logger.warning("%s sets %s=%r, outside the param_space", label, where(path), value)
        found.append((path, value))
    return found


class VariantPlan:
    """The configs of a space with ``num_samples`` and preset points, addressable by index.

    Each preset point (Ray Tune's ``points_to_evaluate``) takes one of the ``num_samples``
    and expands the grids it does not fix; the remaining samples expand the whole space.
    """

    def __init__(
        self,
        param_space: dict[str, Any] | None,
        num_samples: int = 1,
        points_to_evaluate: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        space = param_space if param_space is not None else {}
        if not isinstance(space, dict):
            raise TypeError(f"param_space={space!r} is invalid: a dict or None")
        self.space = space
        self._blocks: list[tuple[list[tuple[Path, Any]], list[tuple[Path, list[Any]]], int]] = []
        for i, point in enumerate(points_to_evaluate):
            if not isinstance(point, Mapping):
                raise TypeError(f"points_to_evaluate[{i}]={point!r} is invalid: a dict")
            assignments = _preset_assignments(space, point, f"points_to_evaluate[{i}]")
            block_space = copy_tree(space)
            for path, value in assignments:
                set_path(block_space, path, value)
            self._add_block(assignments, block_space, 1)
        plain_samples = max(0, num_samples - len(points_to_evaluate))
        if plain_samples:
            self._add_block([], space, plain_samples)
        self.total = sum(repeats * _combos(grids) for _, grids, repeats in self._blocks)

    def _add_block(self, assignments: list[tuple[Path, Any]], space: Any, repeats: int) -> None:
        grids = [(path, leaf["grid_search"]) for path, leaf in leaves(space) if is_grid(leaf)]
        self._blocks.append((assignments, grids, repeats))

    def _block_of(
        self, index: int
    ) -> tuple[list[tuple[Path, Any]], list[tuple[Path, list[Any]]], int]:
        """The block holding config ``index``, and the index within it."""
        for assignments, grids, repeats in self._blocks:
            size = repeats * _combos(grids)
            if index < size:
                return assignments, grids, index
            index -= size
        raise IndexError(index)

    def variant(self, index: int, rng: random.Random) -> dict[str, Any]:
        """The ``index``-th config, its random values drawn from ``rng``."""
        if not 0 <= index < self.total:
            raise IndexError(f"variant index {index} is outside 0..{self.total - 1}")
        assignments, grids, index = self._block_of(index)
        config = copy_tree(self.space)
        for path, value in assignments:
            config = set_path(config, path, copy_tree(value))
        combo = index % _combos(grids)
        for path, values in reversed(grids):  # the last grid varies fastest
            combo, position = divmod(combo, len(values))
            config = set_path(config, path, copy_tree(values[position]))
        config = resolve_domains(config, rng)
        return restore_tuples(config, self.space)


def _combos(grids: list[tuple[Path, list[Any]]]) -> int:
    return math.prod(len(values) for _, values in grids)


def generate_configs(
    param_space: dict[str, Any] | None, num_samples: int = 1, seed: int | None = None
) -> list[dict[str, Any]]:
    """Expand a search space into concrete trial configs (all at once)."""
    plan = VariantPlan(param_space, num_samples)
    rng = random.Random(seed)
    return [plan.variant(i, rng) for i in range(plan.total)]


def count_variants(param_space: dict[str, Any] | None, num_samples: int = 1) -> int:
    """How many configs ``generate_configs`` gives."""
    return VariantPlan(param_space, num_samples).total
