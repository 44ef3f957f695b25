"""``tune-ckpt verify``, and the check of one checkpoint that ``show`` reports too.

A checkpoint is "ok", "bad" (its bytes were read and failed verification, or its manifest is
gone though the journal records it) or "unreadable" (storage failed: unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

from tune_ckpt import journal
from tune_ckpt.cli.gather import (
    CLI_RETRY,
    Doc,
    experiment_state,
    experiments_at,
    resolve,
)
from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    StorageError,
)
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.references import under
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.reading import Committed
from tune_ckpt.trial import Trial

# -- checking the checkpoints of one trial -------------------------------------------------


MANIFEST_MISSING = "manifest missing: the journal records this checkpoint as committed"


@dataclass(frozen=True)
class Check:
    """The outcome of checking one checkpoint.

    Attributes:
        status: "ok"; "bad" (its bytes were read and failed verification, or its manifest
            is gone though the journal records it); "unreadable" (storage failed: unknown).
        problems: one line per problem ("bad"), or the storage error ("unreadable").
        committed: its manifest, when that could be read.
    """

    status: str
    problems: list[str]
    committed: Committed | None


def check_checkpoint(
    store: CheckpointStore, relative: str, expected_digest: str | None
) -> Check | None:
    """Verify one committed checkpoint. None when it is no longer committed (retention of a
    running sweep deleted it after it was listed)."""
    try:
        return Check("ok", [], store.verify(relative, expected_digest or None))
    except CorruptCheckpointError as exc:
        try:
            committed: Committed | None = store.read(relative)
        except (CheckpointError, StorageError):
            committed = None
        return Check("bad", exc.problems, committed)
    except CheckpointNotFoundError:
        return None
    except CheckpointError as exc:  # a manifest that does not parse
        return Check("bad", [str(exc)], None)
    except StorageError as exc:
        return Check("unreadable", [str(exc)], None)


def journal_only(trial: Trial, on_storage: list[str]) -> list[CheckpointRecord]:
    """The checkpoints the journal records as committed that storage has no manifest of."""
    listed = set(on_storage)
    return [record for record in trial.checkpoints if record.path not in listed]


def _journal_only_now(
    experiment: StorageLocation, trial: Trial, on_storage: list[str], state: str
) -> list[CheckpointRecord]:
    """:func:`journal_only`; while a driver runs, judged by the journal as it is after the
    listing, since its retention journals a checkpoint's removal before deleting it."""
    if state == "running":
        _, fresh = journal.load(experiment)
        trial = fresh.get(trial.trial_id, trial)
    return journal_only(trial, on_storage)


def records_by_path(trial: Trial) -> dict[str, CheckpointRecord]:
    """The trial's journal records of committed checkpoints, by relative path."""
    return {record.path: record for record in trial.checkpoints}


def trial_checks(
    experiment: StorageLocation, store: CheckpointStore, trial: Trial, state: str
) -> list[tuple[str, Check]]:
    """``(relative path, Check)`` of each committed checkpoint of ``trial`` (checked against
    the digest its journal record holds), then of each the journal records as committed
    that storage has no manifest of (``state``: the experiment's)."""
    records = records_by_path(trial)
    on_storage = store.list_committed(trial.trial_dir)
    checks: list[tuple[str, Check]] = []
    for relative in on_storage:
        record = records.get(relative)
        checked = check_checkpoint(store, relative, record.manifest_digest if record else None)
        if checked is not None:
            checks.append((relative, checked))
    # A PBT exploiter's record of its donor's checkpoint, in the donor's folder.
    for record in trial.checkpoints:
        if not under(trial.trial_dir, record.path):
            checked = check_checkpoint(store, record.path, record.manifest_digest)
            if checked is not None:
                checks.append((record.path, checked))
                on_storage.append(record.path)
    for record in _journal_only_now(experiment, trial, on_storage, state):
        checks.append((record.path, Check("bad", [MANIFEST_MISSING], None)))
    return checks


# -- verify --------------------------------------------------------------------------------


def verify(path: str, retry: StorageRetry = CLI_RETRY) -> Doc:
    """``verify PATH``: every committed checkpoint of every trial against its manifest, and
    every checkpoint the journal records as committed."""
    location = resolve(path, retry)
    checked_docs = []
    for experiment in experiments_at(location):
        _, trials = journal.load(experiment)
        state, _ = experiment_state(experiment, trials)
        store = CheckpointStore(experiment)
        for trial in trials.values():
            records = records_by_path(trial)
            for relative, checked in trial_checks(experiment, store, trial, state):
                record = records.get(relative)
                if checked.committed is not None:
                    iteration: int | None = checked.committed.iteration
                else:
                    iteration = record.iteration if record else None
                checked_docs.append(
                    {
                        "experiment": experiment.uri(),
                        "trial_id": trial.trial_id,
                        "path": experiment.uri(relative),
                        "iteration": iteration,
                        "ok": checked.status == "ok",
                        "status": checked.status,
                        "problems": checked.problems,
                    }
                )
    bad = sum(1 for c in checked_docs if c["status"] == "bad")
    unreadable = sum(1 for c in checked_docs if c["status"] == "unreadable")
    return {
        "kind": "verify",
        "path": location.uri(),
        "verified": len(checked_docs) - bad - unreadable,
        "bad": bad,
        "unreadable": unreadable,
        "checkpoints": checked_docs,
    }
