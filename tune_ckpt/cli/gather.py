"""What the ``tune-ckpt`` commands report, gathered from storage as plain JSON-able dicts.

Every function here reads (``gc`` also sweeps) and returns one document whose keys are the
``--json`` output documented in ``tune-ckpt --help``. Nothing here prints or imports rich, so
the same documents back the tables and the JSON.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tune_ckpt import journal
from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    ExperimentError,
    StorageError,
    TuneCkptError,
)
from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.progress import error_line
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.result import TRAINING_ITERATION
from tune_ckpt.result_files import read_results
from tune_ckpt.storage import paths
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.lease import LeaseInfo, read_leases
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.reading import Committed
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


def _name(location: StorageLocation) -> str:
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
    return sorted(found, key=_name)


def _no_experiment(location: StorageLocation) -> CliError:
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
        raise _no_experiment(location)
    return found


def _tune_settings(header: dict[str, Any]) -> tuple[str | None, str | None]:
    tune_config = header.get("tune_config") or {}
    return tune_config.get("metric"), tune_config.get("mode")


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
    unfinished = (TrialStatus.RUNNING, TrialStatus.PENDING)
    if leases or any(t.status in unfinished for t in trials.values()):
        return "interrupted", leases[0] if leases else None
    return "finished", None


def shown_status(trial: Trial, state: str) -> str:
    """The trial's status as ``ls`` shows it: RUNNING only while a live driver runs it."""
    if trial.status == TrialStatus.RUNNING and state != "running":
        return INTERRUPTED
    return trial.status.value


def _status_counts(trials: dict[str, Trial], state: str = "running") -> dict[str, int]:
    return dict(sorted(Counter(shown_status(t, state) for t in trials.values()).items()))


# -- results and checkpoints of one trial --------------------------------------------------


def _iteration(result: dict[str, Any]) -> int:
    try:
        return int(result.get(TRAINING_ITERATION, 0))
    except (TypeError, ValueError):
        return 0


def last_result(trial: Trial, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial's latest result: the journal's, or result.json's when that went further (a
    driver killed after flushing results but before journaling them)."""
    if history and _iteration(history[-1]) > _iteration(trial.last_result):
        return history[-1]
    return trial.last_result


def best_score(results: list[dict[str, Any]], metric: str | None, mode: str | None) -> float | None:
    """The best numeric value of ``metric`` over ``results`` (``mode`` "min" or "max"); None
    without a metric or a numeric value (NaN and infinities do not count)."""
    if not metric or mode not in ("min", "max"):
        return None
    scores = [as_score(lookup(r, metric)) for r in results]
    finite = [s for s in scores if s is not None and not math.isinf(s)]
    if not finite:
        return None
    return max(finite) if mode == "max" else min(finite)


def exception_line(error: str | None) -> str | None:
    """The exception line of a traceback (see :func:`tune_ckpt.progress.error_line`); None
    without an error."""
    return error_line(error) if error and error.strip() else None


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


def _records(trial: Trial) -> dict[str, CheckpointRecord]:
    return {record.path: record for record in trial.checkpoints}


# -- ls ------------------------------------------------------------------------------------


def experiment_summary(experiment: StorageLocation) -> Doc:
    """One experiment's row of ``ls`` on a folder of experiments."""
    try:
        header, trials = journal.load(experiment)
    except ExperimentError as exc:
        return {
            "name": _name(experiment),
            "path": experiment.uri(),
            "trainable": None,
            "created": None,
            "num_trials": 0,
            "statuses": {},
            "state": None,
            "lease": None,
            "error": str(exc),
        }
    state, lease = experiment_state(experiment, trials)
    return {
        "name": _name(experiment),
        "path": experiment.uri(),
        "trainable": header.get("trainable"),
        "created": header.get("created"),
        "num_trials": len(trials),
        "statuses": _status_counts(trials, state),
        "state": state,
        "lease": lease.to_json() if lease else None,
        "error": None,
    }


def trial_row(
    experiment: StorageLocation,
    store: CheckpointStore,
    trial: Trial,
    metric: str | None,
    mode: str | None,
    state: str = "running",
) -> Doc:
    """One trial's row of ``ls`` on an experiment (``state``: the experiment's)."""
    history = read_results(experiment, trial.trial_dir)
    last = last_result(trial, history)
    committed = store.list_committed(trial.trial_dir)
    size = 0
    for relative in committed:
        # Deleted since listed, or an unreadable manifest: no size to add.
        with contextlib.suppress(CheckpointError):
            size += store.read(relative).manifest.total_size
    return {
        "trial_id": trial.trial_id,
        "trial_dir": trial.trial_dir,
        "status": shown_status(trial, state),
        "iterations": _iteration(last),
        "best_metric": best_score([*history, last], metric, mode),
        "num_checkpoints": len(committed),
        "checkpoint_bytes": size,
    }


def experiment_listing(experiment: StorageLocation) -> Doc:
    """``ls`` on an experiment: its settings and one row per trial."""
    header, trials = journal.load(experiment)
    metric, mode = _tune_settings(header)
    store = CheckpointStore(experiment)
    state, lease = experiment_state(experiment, trials)
    return {
        "kind": "experiment",
        "path": experiment.uri(),
        "name": _name(experiment),
        "trainable": header.get("trainable"),
        "created": header.get("created"),
        "metric": metric,
        "mode": mode,
        "state": state,
        "lease": lease.to_json() if lease else None,
        "statuses": _status_counts(trials, state),
        "trials": [trial_row(experiment, store, t, metric, mode, state) for t in trials.values()],
    }


def ls(path: str, retry: StorageRetry = CLI_RETRY) -> Doc:
    """``ls PATH``: the trials of an experiment, or the experiments in a folder."""
    location = resolve(path, retry)
    if journal.exists(location):
        return experiment_listing(location)
    found = experiments_under(location)
    if not found:
        raise _no_experiment(location)
    return {
        "kind": "experiments",
        "path": location.uri(),
        "experiments": [experiment_summary(e) for e in found],
    }


# -- show ----------------------------------------------------------------------------------


def split_trial_path(path: str) -> tuple[str, str]:
    """``(experiment path, trial)`` of ``EXPERIMENT/TRIAL``; a URI's query options stay with
    the experiment."""
    base, sep, query = path.partition("?")
    base = base.rstrip("/")
    parent, _, name = base.rpartition("/")
    if not name or not parent or parent.endswith((":/", "://")):
        raise CliError(f"{path!r} is not EXPERIMENT/TRIAL: give the trial's folder or id last")
    return parent + sep + query, name


def find_trial(trials: dict[str, Trial], name: str, experiment: StorageLocation) -> Trial:
    """The trial whose id or folder name is ``name``; CliError naming a few others if none."""
    for trial in trials.values():
        if name in (trial.trial_id, trial.trial_dir, paths.basename(trial.trial_dir)):
            return trial
    known = list(trials)
    some = ", ".join(known[:5]) + (f", ... ({len(known)} in all)" if len(known) > 5 else "")
    raise CliError(
        f"no trial {name!r} in {experiment.uri()} (trial ids: {some or 'none'}); "
        "give a trial id or folder name"
    )


def show(path: str, retry: StorageRetry = CLI_RETRY) -> Doc:
    """``show EXPERIMENT/TRIAL``: one trial's settings, outcome and checkpoints on storage."""
    experiment_path, name = split_trial_path(path)
    experiment = resolve(experiment_path, retry)
    if not journal.exists(experiment):
        raise CliError(
            f"{experiment.uri()} holds no tune_ckpt experiment ({journal.JOURNAL_FILE} not "
            "found); give EXPERIMENT/TRIAL"
        )
    header, trials = journal.load(experiment)
    metric, mode = _tune_settings(header)
    trial = find_trial(trials, name, experiment)
    state, _ = experiment_state(experiment, trials)
    store = CheckpointStore(experiment)
    history = read_results(experiment, trial.trial_dir)
    by_iteration = {_iteration(r): r for r in history}
    records = _records(trial)
    on_storage = store.list_committed(trial.trial_dir)
    checks: list[tuple[str, Check]] = []
    for relative in on_storage:
        record = records.get(relative)
        checked = check_checkpoint(store, relative, record.manifest_digest if record else None)
        if checked is not None:
            checks.append((relative, checked))
    for record in _journal_only_now(experiment, trial, on_storage, state):
        checks.append((record.path, Check("bad", [MANIFEST_MISSING], None)))
    checkpoints = []
    for relative, checked in checks:
        record = records.get(relative)
        committed = checked.committed
        if record is not None:
            iteration = record.iteration
        elif committed is not None:
            iteration = committed.iteration
        else:
            iteration = paths.parse_checkpoint_dirname(paths.basename(relative)) or 0
        # The journal's record holds the metrics reported with the checkpoint; a checkpoint
        # the journal never heard of (driver killed) has its iteration's result instead.
        if record is not None and record.metrics:
            metrics, source = dict(record.metrics), "journal"
        elif iteration in by_iteration:
            metrics, source = dict(by_iteration[iteration]), "results"
        else:
            metrics, source = {}, None
        checkpoints.append(
            {
                "name": paths.basename(relative),
                "path": experiment.uri(relative),
                "iteration": iteration,
                "metrics": metrics,
                "metrics_source": source,
                "size": committed.manifest.total_size if committed else None,
                "verified": checked.status == "ok",
                "status": checked.status,
                "problems": checked.problems,
            }
        )
    checkpoints.sort(key=lambda c: (c["iteration"], c["name"]))
    return {
        "kind": "trial",
        "experiment": experiment.uri(),
        "path": experiment.uri(trial.trial_dir),
        "trial_id": trial.trial_id,
        "trial_dir": trial.trial_dir,
        "status": shown_status(trial, state),
        "config": trial.config,
        "num_failures": trial.num_failures,
        "num_preemptions": trial.num_preemptions,
        "error": exception_line(trial.error),
        "traceback": trial.error,
        "metric": metric,
        "mode": mode,
        "last_result": last_result(trial, history),
        "checkpoints": checkpoints,
    }


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
            records = _records(trial)
            on_storage = store.list_committed(trial.trial_dir)
            checks: list[tuple[str, Check]] = []
            for relative in on_storage:
                record = records.get(relative)
                digest = record.manifest_digest if record else None
                checked = check_checkpoint(store, relative, digest)
                if checked is not None:
                    checks.append((relative, checked))
            for record in _journal_only_now(experiment, trial, on_storage, state):
                checks.append((record.path, Check("bad", [MANIFEST_MISSING], None)))
            for relative, checked in checks:
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


# -- gc ------------------------------------------------------------------------------------


def _lease_doc(experiment: StorageLocation, lease: LeaseInfo) -> Doc:
    return {"experiment": experiment.uri(), "path": experiment.uri(lease.name), **lease.to_json()}


def gc(
    path: str, dry_run: bool = False, force: bool = False, retry: StorageRetry = CLI_RETRY
) -> Doc:
    """``gc PATH``: sweep the leftovers of interrupted writes from every trial folder.

    Refuses (CliError) an experiment whose driver holds a live lease, unless ``force``:
    while a driver runs, its temporary folders are writes in progress, not leftovers. A
    dry run never refuses; it lists such experiments under "running". Stale leases (their
    driver died) are removed, live ones only with ``force``. A checkpoint folder without a
    manifest that the journal records as committed is kept (listed under "kept") unless
    ``force``: its manifest was lost, and the folder may be all that is left of it.
    """
    location = resolve(path, retry)
    experiments = experiments_at(location)
    # Checked for all before touching any, so a refusal changes nothing.
    leases = {e.uri(): read_leases(e) for e in experiments}
    running = [
        _lease_doc(e, lease)
        for e in experiments
        for lease in leases[e.uri()]
        if not lease.is_stale()
    ]
    if running and not force and not dry_run:
        first = running[0]
        others = f" (and {len(running) - 1} more)" if len(running) > 1 else ""
        holder = next(lease for lease in leases[first["experiment"]] if not lease.is_stale())
        raise CliError(
            f"{first['experiment']}{others} is being run by a live driver: "
            f"{holder.holder()}, lease {holder.name}. Its temporary folders are writes in "
            "progress, not leftovers. If no driver runs it, wait until its heartbeat is "
            f"older than {holder.timeout_s:g} s, or pass --force"
        )
    removed: list[Doc] = []
    published: list[Doc] = []
    kept: list[Doc] = []
    stale_markers: list[Doc] = []
    for experiment in experiments:
        _, trials = journal.load(experiment)
        store = CheckpointStore(experiment)
        for trial in trials.values():
            keep = () if force else {record.path for record in trial.checkpoints}
            report = store.sweep_report(trial.trial_dir, dry_run=dry_run, keep=keep)
            where = {"experiment": experiment.uri(), "trial_id": trial.trial_id}
            removed += [{**where, "path": experiment.uri(r)} for r in report.removed]
            kept += [{**where, "path": experiment.uri(r)} for r in report.kept]
            published += [
                {**where, "from": experiment.uri(source), "to": experiment.uri(target)}
                for source, target in report.published
            ]
        # After the sweep: had it failed, the lease would still say the run is unclean.
        for lease in leases[experiment.uri()]:
            if not (force or lease.is_stale()):
                continue
            if not dry_run:
                experiment.delete_file(lease.name)
            stale_markers.append(_lease_doc(experiment, lease))
    return {
        "kind": "gc",
        "path": location.uri(),
        "dry_run": dry_run,
        "removed": removed,
        "published": published,
        "kept": kept,
        "markers": stale_markers,
        "running": [] if force else running,
    }


# -- resume --------------------------------------------------------------------------------


def resume_summary(experiment: StorageLocation) -> Doc:
    """What ``resume`` reports once ``fit()`` returned: the trials as journaled."""
    _, trials = journal.load(experiment)
    return {
        "kind": "resume",
        "path": experiment.uri(),
        "num_trials": len(trials),
        "statuses": _status_counts(trials),
        "errored": [t.trial_id for t in trials.values() if t.status == TrialStatus.ERROR],
        "trials": [
            {"trial_id": t.trial_id, "status": t.status.value, "iterations": t.iteration}
            for t in trials.values()
        ],
    }
