"""The structure of a search space: what a restore checks a re-specified ``param_space``
against, and how that space's constants are applied to the restored trials' configs.

Ray Tune lets ``Tuner.restore(path, trainable, param_space=...)`` re-supply a space whose
values could not survive the experiment (object references, large objects): the space must
be the one the experiment started with, only its constants' values may change. The
structure is therefore a JSON-able mapping of key paths (``"['model']['lr']"``, as the user
would index the space) to kinds:

- a domain's class name (``"Uniform"``, ``"Choice"``; ``"Function"`` for ``sample_from``),
- ``"grid_search(N)"`` for a grid of N values (not looked into),
- ``"dict"``, ``"list"``, ``"tuple"`` for containers (their items have their own paths),
- otherwise the constant's type name (``"float"``, ``"str"``, ``"ObjectRef"``).
"""

from __future__ import annotations

from typing import Any

from tune_ckpt.search.sample import Domain
from tune_ckpt.search.variant_generator import Path, is_grid, where


def kind_of(value: Any) -> str:
    """The kind a structure records for one node of a space."""
    if is_grid(value):
        return f"grid_search({len(value['grid_search'])})"
    return type(value).__name__  # a domain's class, a container's or a constant's type


def describe(space: dict[str, Any] | None) -> dict[str, str]:
    """The structure of ``space``: key path -> kind, in the space's insertion order."""
    found: dict[str, str] = {}

    def visit(node: Any, path: Path) -> None:
        if path:
            found[where(path, "")] = kind_of(node)
        if is_grid(node) or isinstance(node, Domain):
            return
        if isinstance(node, dict):
            for key, child in node.items():
                visit(child, (*path, key))
        elif isinstance(node, list | tuple):
            for index, child in enumerate(node):
                visit(child, (*path, index))

    visit(space or {}, ())
    return found


def first_difference(original: dict[str, str], new: dict[str, str]) -> str | None:
    """None when the structures match; else a sentence naming the first difference (in the
    new space's order, then what the new space lacks)."""
    for path, kind in new.items():
        if path not in original:
            return f"param_space{path} ({kind}) is not in the experiment's param_space"
        if original[path] != kind:
            return (
                f"param_space{path} is {kind}, but the experiment was started with "
                f"{original[path]} there"
            )
    for path, kind in original.items():
        if path not in new:
            return f"param_space{path} ({kind}) is missing: the experiment's param_space has it"
    return None


def apply_constants(config: Any, space: Any) -> tuple[Any, bool]:
    """``config`` with the constants of ``space`` put in at their paths (grid and sampled
    values keep the config's own), and whether any value changed (by identity). Paths the
    config lacks are skipped; containers keep the config's type (a tuple stays a tuple)."""
    if is_grid(space) or isinstance(space, Domain):
        return config, False
    if isinstance(space, dict) and isinstance(config, dict):
        out = dict(config)
        changed = False
        for key, child in space.items():
            if key in out:
                out[key], did = apply_constants(out[key], child)
                changed = changed or did
        return (out, True) if changed else (config, False)
    if isinstance(space, list | tuple) and isinstance(config, list | tuple):
        items = list(config)
        changed = False
        for index, child in enumerate(space[: len(items)]):
            items[index], did = apply_constants(items[index], child)
            changed = changed or did
        if not changed:
            return config, False
        return (tuple(items) if isinstance(config, tuple) else items), True
    if isinstance(space, dict | list | tuple):
        return config, False  # the trial's value is not a container here: leave it
    if isinstance(space, _PLAIN) and type(space) is type(config):
        return space, bool(space != config)
    return space, space is not config  # objects (arrays, references) by identity


_PLAIN = (str, int, float, bool, bytes, type(None))
