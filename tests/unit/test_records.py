"""Tests for tune_ckpt.records: CheckpointRecord's JSON form and path safety."""

from __future__ import annotations

import json

import pytest

from tune_ckpt.errors import UnsafePathError
from tune_ckpt.records import CheckpointRecord


def make_record() -> CheckpointRecord:
    return CheckpointRecord(
        path="trial_1/checkpoint_000010",
        iteration=10,
        metrics={"loss": 0.25, "val": {"acc": 0.9}, "tags": ["a", "b"]},
        manifest_digest="ab" * 32,
        committed_at=1700000000.5,
    )


def test_to_json_from_json_round_trip() -> None:
    """from_json(to_json()) gives an equal record with equal metrics."""
    record = make_record()
    back = CheckpointRecord.from_json(record.to_json())
    assert back == record
    assert back.metrics == record.metrics
    assert back.manifest_digest == "ab" * 32
    assert back.committed_at == 1700000000.5


def test_round_trip_through_json_text() -> None:
    """dumps() is valid JSON that from_json reads back, with sorted keys."""
    record = make_record()
    text = record.dumps()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert CheckpointRecord.from_json(data) == record
    assert CheckpointRecord.from_json(data).metrics == record.metrics


def test_to_json_holds_only_the_relative_path() -> None:
    """The JSON form stores the relative path, nothing absolute."""
    data = make_record().to_json()
    assert data["path"] == "trial_1/checkpoint_000010"
    assert set(data) == {"path", "iteration", "metrics", "manifest_digest", "committed_at"}


def test_from_json_fills_defaults_and_coerces() -> None:
    """Optional fields default, and the iteration is coerced to int."""
    record = CheckpointRecord.from_json({"path": "t/checkpoint_000002", "iteration": "2"})
    assert record.iteration == 2
    assert record.metrics == {}
    assert record.manifest_digest == ""
    assert record.committed_at == 0.0


def test_metrics_do_not_affect_equality() -> None:
    """Two records of the same checkpoint are equal whatever metrics they carry."""
    a = CheckpointRecord("t/checkpoint_000001", 1, {"x": 1})
    b = CheckpointRecord("t/checkpoint_000001", 1, {"x": 2})
    assert a == b
    assert a != CheckpointRecord("t/checkpoint_000002", 2, {"x": 1})


def test_dumps_tolerates_non_json_metrics() -> None:
    """dumps() writes a repr for metric values JSON cannot hold, instead of failing."""
    record = CheckpointRecord("t/checkpoint_000001", 1, {"odd": {3}})
    assert json.loads(record.dumps())["metrics"]["odd"] == "{3}"


@pytest.mark.parametrize(
    "path",
    [
        "/abs/trial/checkpoint_000001",
        "../trial/checkpoint_000001",
        "trial/../../checkpoint_000001",
        "s3://bucket/trial/checkpoint_000001",
        "",
    ],
)
def test_unsafe_paths_rejected(path: str) -> None:
    """Absolute, climbing, URI and empty paths are rejected at construction and from JSON."""
    with pytest.raises(UnsafePathError):
        CheckpointRecord(path=path, iteration=1)
    with pytest.raises(UnsafePathError):
        CheckpointRecord.from_json({"path": path, "iteration": 1})
