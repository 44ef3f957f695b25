"""What ``Tuner.restore`` makes of an experiment found on storage: each trial's records
matched with the checkpoints storage holds (storage wins), and a re-specified param_space
checked against the one the experiment was started with."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from tune_ckpt.errors import CheckpointError
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.references import under
from tune_ckpt.result_files import ResultFiles, read_results
from tune_ckpt.search import space_structure
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)


def check_restored_space(
    header: dict[str, Any], param_space: dict[str, Any], experiment: StorageLocation
) -> None:
    """A param_space re-specified on restore must have the structure the experiment was
    started with (same key paths, same domain classes, grid lengths and constant types)."""
    original = header.get("param_space_structure")
    if original is None:
        logger.warning(
            "%s was started before tune_ckpt recorded the structure of its param_space: the "
            "param_space passed to Tuner.restore could not be checked against it (its "
            "constants are applied as given)",
            experiment.uri(),
        )
        return
    difference = space_structure.first_difference(original, space_structure.describe(param_space))
    if difference is not None:
        raise ValueError(
            f"param_space passed to Tuner.restore differs from the one {experiment.uri()} was "
            f"started with: {difference}. Re-specify the same space; only constants' values "
            "(object references, large objects) may change on restore"
        )


def reconcile(
    trial: Trial,
    experiment: StorageLocation,
    store: CheckpointStore,
    elsewhere: Collection[str] = (),
) -> None:
    """Make the trial's checkpoint records match what storage holds, and its result files
    reach its newest checkpoint.

    A checkpoint committed after the journal's last word (the driver died before it heard
    of it) is used; the results leading up to it, which the driver may never have written,
    come from its manifest, so the history stays continuous. Checkpoints in the trial's
    folder that other trials' records refer to (``elsewhere``: a PBT exploiter's record of
    a checkpoint its donor no longer keeps, or the exploiter's lineage before an exploit)
    are not adopted; the trial's records of other trials' checkpoints (its exploit's) are
    kept while they are committed.
    """
    known = {r.path: r for r in trial.checkpoints}
    on_storage = [
        relative
        for relative in store.list_committed(trial.trial_dir)
        if relative in known or relative not in elsewhere
    ]
    foreign = [r for r in trial.checkpoints if not under(trial.trial_dir, r.path)]
    for record in list(foreign):
        try:
            store.read(record.path)
        except CheckpointError as exc:
            logger.warning(
                "trial %s: dropping its record of %s: %s", trial.trial_id, record.path, exc
            )
            foreign.remove(record)
    history = read_results(experiment, trial.trial_dir)
    # Rows before an exploit that moved the iteration back do not count: results after
    # the donor's iteration in a newer checkpoint's manifest are still missing here.
    since = history[trial.history_floor :]
    last = max((int(r.get("training_iteration", 0)) for r in since), default=0)
    unknown = {}
    missing: list[dict[str, Any]] = []
    for relative in list(on_storage):
        if relative in known:
            continue
        try:
            committed = store.read(relative)
        except CheckpointError as exc:
            # A damaged manifest: that checkpoint is bad, the older ones still count.
            logger.warning("trial %s: skipping checkpoint %s", trial.trial_id, exc)
            on_storage.remove(relative)
            continue
        unknown[relative] = committed
        for result in committed.manifest.results:
            if int(result.get("training_iteration", 0)) > last:
                missing.append(result)
                last = int(result["training_iteration"])
    if missing:
        files = ResultFiles(experiment, trial.trial_dir)
        for result in missing:
            files.add(result)
        files.flush()
        history.extend(missing)
    by_iteration = {int(r.get("training_iteration", 0)): r for r in history}
    trial.checkpoints = foreign + [
        known[relative]
        if relative in known
        else CheckpointRecord(
            relative,
            unknown[relative].iteration,
            dict(by_iteration.get(unknown[relative].iteration, {})),
            unknown[relative].manifest_digest,
            unknown[relative].manifest.created,
        )
        for relative in on_storage
    ]
    if trial.status == TrialStatus.RUNNING:
        trial.status = TrialStatus.PENDING
