"""``tune-ckpt ls``, ``show`` and ``resume``: the experiments, their trials and one trial's
checkpoints, as documents (see ``cli/gather``)."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from tune_ckpt import journal
from tune_ckpt.cli.gather import (
    CLI_RETRY,
    CliError,
    Doc,
    exception_line,
    experiment_name,
    experiment_state,
    experiments_under,
    last_result,
    no_experiment,
    resolve,
    result_iteration,
    shown_status,
    status_counts,
    tune_settings,
)
from tune_ckpt.cli.gather_checks import records_by_path, trial_checks
from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import CheckpointError, ExperimentError
from tune_ckpt.goodput import SweepGoodput, useful_seconds
from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.result_files import read_results
from tune_ckpt.storage import paths
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus


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


# -- ls ------------------------------------------------------------------------------------


def experiment_summary(experiment: StorageLocation) -> Doc:
    """One experiment's row of ``ls`` on a folder of experiments."""
    try:
        header, trials = journal.load(experiment)
    except ExperimentError as exc:
        return {
            "name": experiment_name(experiment),
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
        "name": experiment_name(experiment),
        "path": experiment.uri(),
        "trainable": header.get("trainable"),
        "created": header.get("created"),
        "num_trials": len(trials),
        "statuses": status_counts(trials, state),
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
        "iterations": result_iteration(last),
        "best_metric": best_score([*history, last], metric, mode),
        "num_checkpoints": len(committed),
        "checkpoint_bytes": size,
        **trial.goodput.fields(useful_seconds(last)),
    }


def experiment_listing(experiment: StorageLocation) -> Doc:
    """``ls`` on an experiment: its settings and one row per trial."""
    header, trials = journal.load(experiment)
    metric, mode = tune_settings(header)
    store = CheckpointStore(experiment)
    state, lease = experiment_state(experiment, trials)
    rows = [trial_row(experiment, store, t, metric, mode, state) for t in trials.values()]
    goodput = SweepGoodput.of((t.goodput, useful_seconds(t.last_result)) for t in trials.values())
    return {
        "kind": "experiment",
        "path": experiment.uri(),
        "name": experiment_name(experiment),
        "trainable": header.get("trainable"),
        "created": header.get("created"),
        "metric": metric,
        "mode": mode,
        "state": state,
        "lease": lease.to_json() if lease else None,
        "statuses": status_counts(trials, state),
        "sweep_goodput": goodput.to_json(),
        "trials": rows,
    }


def ls(path: str, retry: StorageRetry = CLI_RETRY) -> Doc:
    """``ls PATH``: the trials of an experiment, or the experiments in a folder."""
    location = resolve(path, retry)
    if journal.exists(location):
        return experiment_listing(location)
    found = experiments_under(location)
    if not found:
        raise no_experiment(location)
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
    metric, mode = tune_settings(header)
    trial = find_trial(trials, name, experiment)
    state, _ = experiment_state(experiment, trials)
    store = CheckpointStore(experiment)
    history = read_results(experiment, trial.trial_dir)
    by_iteration = {result_iteration(r): r for r in history}
    records = records_by_path(trial)
    checks = trial_checks(experiment, store, trial, state)
    last = last_result(trial, history)
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
        "last_result": last,
        **trial.goodput.fields(useful_seconds(last)),
        "checkpoints": checkpoints,
    }


# -- resume --------------------------------------------------------------------------------


def resume_summary(experiment: StorageLocation) -> Doc:
    """What ``resume`` reports once ``fit()`` returned: the trials as journaled."""
    _, trials = journal.load(experiment)
    return {
        "kind": "resume",
        "path": experiment.uri(),
        "num_trials": len(trials),
        "statuses": status_counts(trials),
        "errored": [t.trial_id for t in trials.values() if t.status == TrialStatus.ERROR],
        "trials": [
            {"trial_id": t.trial_id, "status": t.status.value, "iterations": t.iteration}
            for t in trials.values()
        ],
    }
