"""What the ``tune-ckpt`` commands report, gathered from storage as plain JSON-able dicts:
locating experiments and the helpers the reports share.

Each command's report is one document whose keys are the ``--json`` output documented in
``tune-ckpt --help``: ``ls``, ``show`` and ``resume`` in ``cli/gather_trials``, ``verify`` in
``cli/gather_checks``, ``gc`` in ``cli/gather_gc``. They read (``gc`` also sweeps); nothing
prints or imports rich, so the same documents back the tables and the JSON.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tune_ckpt import journal
from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import TuneCkptError
from tune_ckpt.progress import error_line
from tune_ckpt.result import TRAINING_ITERATION
from tune_ckpt.storage import paths
from tune_ckpt.storage.lease import LeaseInfo, read_leases
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus

Doc = dict[str, Any]


class CliError(TuneCkptError):
    """A problem with what the user asked for (no experiment there, unknown trial, ...):
    reported as one line, exit status 2."""


# -- locating experiments ------------------------------------------------------------------


CLI_RETRY = StorageRetry(max_elapsed_s=30.0)
"""A person waits at the prompt: transient storage errors are retried for 30 s, not the
300 s a sweep rides out (``--storage-retry-s``)."""


def resolve(path: str, retry: StorageRetry = CLI_RETRY) -> StorageLocation:
    """The storage location of a local path, ``file://`` or ``s3://`` URI."""
    return StorageLocation.resolve(path, retry=retry)


def experiment_name(location: StorageLocation) -> str:
    """The experiment's folder name (its URI when it is the root of its storage)."""
    return paths.basename(location.root) or location.uri()


def experiments_under(folder: StorageLocation) -> list[StorageLocation]:
    """The experiments directly under ``folder`` (child folders holding a journal), by name."""
    found = []
    for info in folder.list_dir():
        if info.is_file:
            continue
        child = folder.child(paths.basename(info.path))
        if journal.exists(child):
            found.append(child)
    return sorted(found, key=experiment_name)


def no_experiment(location: StorageLocation) -> CliError:
    """The error for a path with no experiment there nor directly under it."""
    return CliError(
        f"{location.uri()} holds no tune_ckpt experiment "
        f"(no {journal.JOURNAL_FILE} there nor in the folders directly under it)"
    )


def experiments_at(location: StorageLocation) -> list[StorageLocation]:
    """``location`` itself when it is an experiment, else the experiments directly under it;
    CliError when there are none."""
    if journal.exists(location):
        return [location]
    found = experiments_under(location)
    if not found:
        raise no_experiment(location)
    return found


def tune_settings(header: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(metric, mode)`` of the TuneConfig recorded in the journal's header."""
    tune_config = header.get("tune_config") or {}
    return tune_config.get("metric"), tune_config.get("mode")


# -- the state of an experiment and its trials ---------------------------------------------


INTERRUPTED = "INTERRUPTED"
"""How ``ls`` shows a trial the journal has as RUNNING when no live driver runs it."""


def experiment_state(
    experiment: StorageLocation, trials: dict[str, Trial]
) -> tuple[str, LeaseInfo | None]:
    """``("running", its live lease)``; ``("interrupted", a stale lease or None)`` when its
    driver died (a stale lease) or left trials unfinished; else ``("finished", None)``."""
    leases = read_leases(experiment)
    live = [lease for lease in leases if not lease.is_stale()]
    if live:
        return "running", live[0]
    unfinished = (TrialStatus.RUNNING, TrialStatus.PENDING, TrialStatus.PAUSED)
    if leases or any(t.status in unfinished for t in trials.values()):
        return "interrupted", leases[0] if leases else None
    return "finished", None


def shown_status(trial: Trial, state: str) -> str:
    """The trial's status as ``ls`` shows it: RUNNING only while a live driver runs it."""
    if trial.status == TrialStatus.RUNNING and state != "running":
        return INTERRUPTED
    return trial.status.value


def status_counts(trials: dict[str, Trial], state: str = "running") -> dict[str, int]:
    """How many trials show each status (:func:`shown_status`), by status name."""
    return dict(sorted(Counter(shown_status(t, state) for t in trials.values()).items()))


def result_iteration(result: dict[str, Any]) -> int:
    """The result's ``training_iteration``; 0 without a number there."""
    try:
        return int(result.get(TRAINING_ITERATION, 0))
    except (TypeError, ValueError):
        return 0


def last_result(trial: Trial, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial's latest result: the journal's, or result.json's when that went further (a
    driver killed after flushing results but before journaling them)."""
    if history and result_iteration(history[-1]) > result_iteration(trial.last_result):
        return history[-1]
    return trial.last_result


def exception_line(error: str | None) -> str | None:
    """The exception line of a traceback (see :func:`tune_ckpt.progress.error_line`); None
    without an error."""
    return error_line(error) if error and error.strip() else None
