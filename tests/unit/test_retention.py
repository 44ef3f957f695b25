"""Tests for tune_ckpt.retention: which committed checkpoints are kept."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from tune_ckpt import retention
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.retention import plan_retention, rank, score_of, warn_unscored_once


def rec(iteration: int, **metrics: Any) -> CheckpointRecord:
    return CheckpointRecord(
        path=f"trial/checkpoint_{iteration:06d}",
        iteration=iteration,
        metrics=metrics,
        committed_at=1000.0 + iteration,
    )


def iters(records: tuple[CheckpointRecord, ...] | list[CheckpointRecord]) -> list[int]:
    return [r.iteration for r in records]


def test_keep_all_by_default() -> None:
    """Without num_to_keep nothing is deleted; keep is newest first."""
    records = [rec(i, acc=i) for i in (1, 2, 3, 4)]
    plan = plan_retention(records, CheckpointConfig())
    assert iters(plan.keep) == [4, 3, 2, 1]
    assert plan.delete == ()


def test_keep_all_with_score_attribute_ranks_best_first() -> None:
    """Without num_to_keep but with a score, keep is ordered best first."""
    records = [rec(1, acc=0.5), rec(2, acc=0.9), rec(3, acc=0.1)]
    plan = plan_retention(records, CheckpointConfig(checkpoint_score_attribute="acc"))
    assert iters(plan.keep) == [2, 1, 3]
    assert plan.delete == ()


def test_empty_records() -> None:
    """No records give an empty plan."""
    plan = plan_retention([], CheckpointConfig(num_to_keep=2))
    assert plan == retention.RetentionPlan((), (), ())


def test_num_to_keep_keeps_most_recent_without_score() -> None:
    """num_to_keep=N keeps the N newest; the rest are deleted oldest first."""
    records = [rec(i) for i in (3, 1, 5, 2, 4)]
    plan = plan_retention(records, CheckpointConfig(num_to_keep=2))
    assert iters(plan.keep) == [5, 4]
    assert iters(plan.delete) == [1, 2, 3]
    assert plan.unscored == ()


def test_num_to_keep_larger_than_records_deletes_nothing() -> None:
    """num_to_keep beyond the number of records keeps everything."""
    records = [rec(1), rec(2)]
    plan = plan_retention(records, CheckpointConfig(num_to_keep=5))
    assert iters(plan.keep) == [2, 1]
    assert plan.delete == ()


def test_score_max_keeps_highest() -> None:
    """With order max the highest scores are kept (plus the latest)."""
    records = [rec(1, acc=0.5), rec(2, acc=0.9), rec(3, acc=0.7), rec(4, acc=0.8)]
    config = CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc")
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [2, 4]
    assert iters(plan.delete) == [1, 3]


def test_score_min_keeps_lowest() -> None:
    """With order min the lowest scores are kept."""
    records = [rec(1, loss=0.5), rec(2, loss=0.1), rec(3, loss=0.3), rec(4, loss=0.05)]
    config = CheckpointConfig(
        num_to_keep=2, checkpoint_score_attribute="loss", checkpoint_score_order="min"
    )
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [4, 2]
    assert iters(plan.delete) == [1, 3]


def test_nested_score_attribute() -> None:
    """'val/acc' ranks by metrics['val']['acc']."""
    records = [rec(1, val={"acc": 0.9}), rec(2, val={"acc": 0.2}), rec(3, val={"acc": 0.95})]
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="val/acc")
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [3]
    assert iters(plan.delete) == [1, 2]


def test_latest_is_kept_even_when_worst() -> None:
    """The latest checkpoint is kept even when it scores worst, so N+1 are kept."""
    records = [rec(1, acc=0.9), rec(2, acc=0.8), rec(3, acc=0.1)]
    config = CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc")
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [1, 2, 3]
    assert len(plan.keep) == config.num_to_keep + 1  # type: ignore[operator]
    assert plan.delete == ()


def test_latest_kept_with_num_to_keep_one() -> None:
    """num_to_keep=1 keeps the best and the latest when they differ."""
    records = [rec(1, acc=0.9), rec(2, acc=0.5), rec(3, acc=0.1)]
    plan = plan_retention(
        records, CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="acc")
    )
    assert iters(plan.keep) == [1, 3]
    assert iters(plan.delete) == [2]


@pytest.mark.parametrize(
    "bad_metrics",
    [{}, {"acc": "0.99"}, {"acc": math.nan}, {"acc": True}, {"acc": None}, {"other": 1.0}],
)
def test_unscored_records_rank_last(bad_metrics: dict[str, Any]) -> None:
    """Records lacking the attribute or holding a non-number (str, NaN, bool) rank last."""
    records = [
        rec(1, acc=0.1),
        CheckpointRecord("trial/checkpoint_000002", 2, bad_metrics, committed_at=2.0),
        rec(3, acc=0.2),
        rec(4, acc=0.3),
    ]
    config = CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="acc")
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [4, 3]
    assert iters(plan.delete) == [1, 2]
    assert iters(plan.unscored) == [2]
    assert iters(rank(records, config)) == [4, 3, 1, 2]


def test_unscored_latest_is_still_kept() -> None:
    """An unscored latest checkpoint ranks last but is kept as the latest."""
    records = [rec(1, acc=0.5), rec(2, acc=0.6), rec(3)]
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="acc")
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [2, 3]
    assert iters(plan.delete) == [1]
    assert iters(plan.unscored) == [3]


def test_ties_prefer_newest() -> None:
    """Among equal scores the newer checkpoint ranks first."""
    records = [rec(1, acc=0.5), rec(2, acc=0.5), rec(3, acc=0.5), rec(4, acc=0.1)]
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="acc")
    assert iters(rank(records, config)) == [3, 2, 1, 4]
    plan = plan_retention(records, config)
    assert iters(plan.keep) == [3, 4]
    assert iters(plan.delete) == [1, 2]


def test_score_of_reads_nested_and_rejects_non_numbers() -> None:
    """score_of returns a float for numbers and None otherwise."""
    assert score_of(rec(1, val={"acc": 3}), "val/acc") == 3.0
    assert score_of(rec(1, acc="x"), "acc") is None
    assert score_of(rec(1, acc=False), "acc") is None


def test_unscored_empty_without_score_attribute() -> None:
    """Without a score attribute no record counts as unscored."""
    plan = plan_retention([rec(1), rec(2)], CheckpointConfig(num_to_keep=1))
    assert plan.unscored == ()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "tune_ckpt.retention" and r.levelno == logging.WARNING
    ]


def test_warn_unscored_once_per_attribute(caplog: pytest.LogCaptureFixture) -> None:
    """One warning per score attribute, however often unscored records show up."""
    caplog.set_level(logging.WARNING, logger="tune_ckpt.retention")
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="acc")
    records = [rec(1, acc=0.5), rec(2, acc="n/a")]
    warned: set[str] = set()
    for _ in range(3):
        warn_unscored_once(plan_retention(records, config), config, warned)
    found = warnings_of(caplog)
    assert len(found) == 1
    message = found[0].getMessage()
    assert "trial/checkpoint_000002" in message
    assert "'acc'" in message
    assert "'n/a'" in message


def test_warn_unscored_again_for_another_attribute(caplog: pytest.LogCaptureFixture) -> None:
    """A second attribute gets its own single warning."""
    caplog.set_level(logging.WARNING, logger="tune_ckpt.retention")
    records = [rec(1)]
    warned: set[str] = set()
    for attribute in ("acc", "loss", "acc", "loss"):
        config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=attribute)
        warn_unscored_once(plan_retention(records, config), config, warned)
    found = warnings_of(caplog)
    assert len(found) == 2
    assert "'acc'" in found[0].getMessage() and "'loss'" in found[1].getMessage()


def test_no_warning_when_all_scored(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing is logged when every record carries a numeric score."""
    caplog.set_level(logging.WARNING, logger="tune_ckpt.retention")
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="acc")
    warned: set[str] = set()
    warn_unscored_once(plan_retention([rec(1, acc=1), rec(2, acc=2)], config), config, warned)
    assert warnings_of(caplog) == []
    assert "acc" not in warned


def test_each_sweep_warns_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    """A second sweep (its own set) warns again: the memory is not process-wide."""
    caplog.set_level(logging.WARNING, logger="tune_ckpt.retention")
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="acc")
    for _ in range(2):
        warn_unscored_once(plan_retention([rec(1)], config), config, set())
    assert len(warnings_of(caplog)) == 2
