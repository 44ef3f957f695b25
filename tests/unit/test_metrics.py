"""Tests for tune_ckpt.metrics: nested lookups and rankable scores."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tune_ckpt.metrics import as_score, lookup


def test_lookup_flat_key() -> None:
    """A flat key is returned as is."""
    assert lookup({"acc": 0.5}, "acc") == 0.5


def test_lookup_nested_with_slash() -> None:
    """'a/b/c' reads metrics['a']['b']['c']."""
    assert lookup({"val": {"acc": 0.7, "deep": {"x": 3}}}, "val/acc") == 0.7
    assert lookup({"val": {"deep": {"x": 3}}}, "val/deep/x") == 3


def test_lookup_flat_key_wins_over_nested() -> None:
    """A flat key containing '/' takes precedence over the nested reading."""
    assert lookup({"val/acc": 1, "val": {"acc": 2}}, "val/acc") == 1


@pytest.mark.parametrize(
    "metrics",
    [{}, {"val": 3}, {"val": {"loss": 1}}, {"val": [1, 2]}, {"val": None}],
)
def test_lookup_missing_returns_default(metrics: dict[str, Any]) -> None:
    """Missing keys and non-mapping intermediates give the default."""
    assert lookup(metrics, "val/acc") is None
    assert lookup(metrics, "val/acc", default="d") == "d"


def test_lookup_returns_falsy_values() -> None:
    """A stored 0 or None is returned, not replaced by the default."""
    assert lookup({"a": {"b": 0}}, "a/b", default=5) == 0
    assert lookup({"a": None}, "a", default=5) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (0, 0.0), (-2.5, -2.5), (math.inf, math.inf), (-math.inf, -math.inf)],
)
def test_as_score_numbers(value: Any, expected: float) -> None:
    """Real numbers become floats."""
    score = as_score(value)
    assert score == expected
    assert isinstance(score, float)


@pytest.mark.parametrize("value", [True, False, math.nan, "0.5", None, [1], {"a": 1}, 1j])
def test_as_score_rejects_non_numbers(value: Any) -> None:
    """Bools, NaN, strings, None, containers and complex numbers are not scores."""
    assert as_score(value) is None
