"""Reading metrics out of (possibly nested) result dicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_NON_FINITE = ("inf", "-inf", "nan")


def lookup(metrics: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Return ``metrics[name]``, reading ``"a/b"`` as ``metrics["a"]["b"]`` when the flat key
    is absent. ``default`` when neither form exists."""
    if name in metrics:
        return metrics[name]
    node: Any = metrics
    for part in name.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level, keys joined with ``/`` (``{"a": {"b": 1}}`` gives
    ``{"a/b": 1}``), the names ``lookup`` accepts and Ray Tune's dataframes use."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def as_score(value: Any) -> float | None:
    """A value usable for ranking: a real, non-NaN number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    score = float(value)
    return None if math.isnan(score) else score


def revived(value: Any) -> Any:
    """``value`` read back from JSON written by ``jsonable``: the strings it made of
    infinities and NaN are floats again."""
    if isinstance(value, str) and value in _NON_FINITE:
        return float(value)
    if isinstance(value, dict):
        return {k: revived(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revived(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """``value`` with non-JSON leaves as strings (NaN/inf included) so any result can be
    written."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
