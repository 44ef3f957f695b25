"""Reading metrics out of (possibly nested) result dicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_MISSING = object()


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


def as_score(value: Any) -> float | None:
    """A value usable for ranking: a real, non-NaN number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    score = float(value)
    return None if math.isnan(score) else score
