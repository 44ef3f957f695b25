"""Which committed checkpoints to keep: a pure policy over CheckpointRecords.

The latest checkpoint is always kept, since it is what a restore needs. With ``num_to_keep``
the N best by score (or the N most recent without a score attribute) are kept besides it.
The caller deletes what the plan drops only after the newest record is committed, which holds
by construction: records only exist for committed checkpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from tune_ckpt.config import CheckpointConfig
from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.records import CheckpointRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPlan:
    """The outcome of applying a CheckpointConfig to a trial's records.

    Attributes:
        keep: records to keep, best first (the latest is among them).
        delete: records to delete, oldest first.
        unscored: records lacking a numeric score attribute; they ranked last.
    """

    keep: tuple[CheckpointRecord, ...]
    delete: tuple[CheckpointRecord, ...]
    unscored: tuple[CheckpointRecord, ...]


def score_of(record: CheckpointRecord, attribute: str) -> float | None:
    """The record's score for ``attribute`` (nested names with ``/``), or None."""
    return as_score(lookup(record.metrics, attribute))


def rank(records: Sequence[CheckpointRecord], config: CheckpointConfig) -> list[CheckpointRecord]:
    """Records best first: by score with the config's order (unscored last, newest first
    among ties), or newest first without a score attribute."""
    by_recency = sorted(records, key=lambda r: (r.iteration, r.committed_at), reverse=True)
    attribute = config.checkpoint_score_attribute
    if attribute is None:
        return by_recency
    sign = 1.0 if config.checkpoint_score_order == "max" else -1.0

    def key(record: CheckpointRecord) -> tuple[int, float]:
        score = score_of(record, attribute)
        return (0, 0.0) if score is None else (1, sign * score)

    # sorted is stable, so equal keys stay newest first.
    return sorted(by_recency, key=key, reverse=True)


def plan_retention(records: Sequence[CheckpointRecord], config: CheckpointConfig) -> RetentionPlan:
    """Split ``records`` into those to keep and those to delete under ``config``."""
    attribute = config.checkpoint_score_attribute
    unscored = tuple(r for r in records if attribute is not None and score_of(r, attribute) is None)
    ranked = rank(records, config)
    if config.num_to_keep is None or not records:
        return RetentionPlan(tuple(ranked), (), unscored)
    latest = max(records, key=lambda r: (r.iteration, r.committed_at))
    keep = list(ranked[: config.num_to_keep])
    if latest not in keep:
        keep.append(latest)
    kept_paths = {r.path for r in keep}
    delete = sorted((r for r in records if r.path not in kept_paths), key=lambda r: r.iteration)
    return RetentionPlan(tuple(keep), tuple(delete), unscored)


def warn_unscored_once(plan: RetentionPlan, config: CheckpointConfig, warned: set[str]) -> None:
    """Log one warning per score attribute (tracked in ``warned``, which the caller owns,
    e.g. one set per sweep) the first time a record lacks it."""
    attribute = config.checkpoint_score_attribute
    if not plan.unscored or attribute is None or attribute in warned:
        return
    warned.add(attribute)
    record = plan.unscored[0]
    logger.warning(
        "checkpoint %s has no numeric %r in its metrics (found %r); such checkpoints rank "
        "last for retention",
        record.path,
        attribute,
        lookup(record.metrics, attribute),
    )


def unreferenced(
    dropped: Iterable[CheckpointRecord], live_paths: Collection[str]
) -> list[CheckpointRecord]:
    """The records among ``dropped`` that may be deleted: those no live record of any trial
    refers to (``live_paths``: every trial's kept records and pending exploits). A PBT
    exploiter's record of a donor's checkpoint keeps it on storage after the donor's own
    retention dropped it; it goes when the last record pointing at it is dropped."""
    seen: set[str] = set()
    deletable = []
    for record in dropped:
        if record.path in live_paths or record.path in seen:
            continue
        seen.add(record.path)
        deletable.append(record)
    return deletable
