"""Checkpoints a worker committed that the driver never heard of.

A worker commits its checkpoint to shared storage, then answers the driver; a worker that
dies (or loses its node) in between leaves a committed checkpoint no record names. Restarting
the trial from it, rather than from the last checkpoint the driver recorded, saves redoing
the steps between (in the node-loss benchmark, the ten since the previous checkpoint). The
restore verifies it like any other; the results leading up to it come from its manifest,
so the history stays continuous (what ``Tuner.restore`` does after a driver died, here after
a worker died).

Only a continuation of what the driver saw is adopted: the checkpoint's results must include
the driver's last result of the trial, same iteration and same ``time_total_s``, or begin
with the step right after it (``time_total_s`` less ``time_this_iter_s`` equal to its
``time_total_s``: the driver's last result was the previous checkpoint's). A checkpoint
left in the trial's folder by an earlier line of the trial (before a PBT exploit, or before
a restart from an older checkpoint) does not.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from tune_ckpt import result as keys
from tune_ckpt.errors import CheckpointError
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.result_files import ResultFiles
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.reading import Committed
from tune_ckpt.trial import Trial

logger = logging.getLogger(__name__)


def _continues(committed: Committed, last: dict[str, Any]) -> bool:
    iteration, total = last.get(keys.TRAINING_ITERATION), last.get(keys.TIME_TOTAL_S)
    results = committed.manifest.results
    if committed.iteration <= int(iteration or 0) or not results:
        return False
    if any(
        r.get(keys.TRAINING_ITERATION) == iteration and r.get(keys.TIME_TOTAL_S) == total
        for r in results
    ):
        return True
    # The driver's last result closed the previous checkpoint's results: this checkpoint's
    # first result must then be the very next step of the same line.
    first = results[0]
    before = float(first.get(keys.TIME_TOTAL_S, -1.0)) - float(
        first.get(keys.TIME_THIS_ITER_S, 0.0)
    )
    return (
        first.get(keys.TRAINING_ITERATION) == int(iteration or 0) + 1
        and total is not None
        and math.isclose(before, float(total), rel_tol=1e-9, abs_tol=1e-9)
    )


def adopt_unheard(
    trial: Trial, store: CheckpointStore, experiment: StorageLocation
) -> CheckpointRecord | None:
    """Record the trial's newest committed checkpoint when the driver never heard of it and
    it continues the driver's last result; its results after that one are written to the
    trial's result files. Returns the record added, if any."""
    last = trial.last_result
    if trial.exploit is not None or not last.get(keys.TRAINING_ITERATION):
        return None
    known = {r.path for r in trial.checkpoints}
    committed_paths = store.list_committed(trial.trial_dir)
    if not committed_paths or committed_paths[-1] in known:
        return None
    try:
        committed = store.read(committed_paths[-1])
    except CheckpointError:
        return None  # a damaged one: the restore goes on from the recorded ones
    if not _continues(committed, last):
        return None
    reached = int(last[keys.TRAINING_ITERATION])
    missing = [
        r for r in committed.manifest.results if int(r.get(keys.TRAINING_ITERATION, 0)) > reached
    ]
    files = ResultFiles(experiment, trial.trial_dir)
    for result in missing:
        files.add(result)
    files.flush()
    metrics = dict(missing[-1]) if missing else dict(last)
    record = CheckpointRecord(
        committed.path,
        committed.iteration,
        metrics,
        committed.manifest_digest,
        committed.manifest.created,
    )
    trial.checkpoints = [*trial.checkpoints, record]
    trial.last_result = metrics
    logger.info("trial %s: its lost worker committed %s, unheard by the driver; restarting "
                "from it", trial.trial_id, committed.path)  # fmt: skip
    return record
