"""Tuner: the user-facing entry point (``fit``, ``restore``, ``can_restore``)."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import os
import uuid
from collections.abc import Mapping
from typing import Any

import ray

from tune_ckpt import journal as journal_mod
from tune_ckpt.config import (
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    StorageRetry,
    TuneConfig,
)
from tune_ckpt.errors import STORAGE_ERRORS, ExperimentError, TrainableError
from tune_ckpt.journal import Journal
from tune_ckpt.persistence import MARKER_PREFIX
from tune_ckpt.progress import Progress
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.result_files import ResultFiles, read_results
from tune_ckpt.result_grid import Result, ResultGrid
from tune_ckpt.runner import TrialRunner
from tune_ckpt.search import generate_configs
from tune_ckpt.storage import paths
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trainable import as_trainable_class
from tune_ckpt.trial import Trial, TrialStatus

STOP_FILE = "stop_criterion.pkl"


def _pickle_problem(trainable: Any) -> str | None:
    """None if ``trainable`` pickles; else which attribute or captured variable does not."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(trainable)
        return None
    except Exception as exc:
        whole = f"{type(exc).__name__}: {exc}"
    if isinstance(trainable, type):
        items = [
            (f"attribute {k!r}", v) for k, v in vars(trainable).items() if not k.startswith("__")
        ]
    else:
        try:
            captured = inspect.getclosurevars(trainable)
            items = [(f"captured variable {k!r}", v) for k, v in captured.nonlocals.items()]
            items += [(f"global {k!r}", v) for k, v in captured.globals.items()]
        except TypeError:
            items = []
    for label, value in items:
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return f"its {label} ({type(value).__name__}) cannot be pickled: {exc}"
    return whole


def _name_of(trainable: Any) -> str:
    return str(getattr(trainable, "__name__", type(trainable).__name__))


class Tuner:
    """Runs a sweep: ``Tuner(trainable, param_space=..., tune_config=..., run_config=...)``.

    Args:
        trainable: a function ``fn(config)`` using ``tune_ckpt.report``, or a
            ``tune_ckpt.Trainable`` subclass.
        param_space: the search space (``grid_search``, ``choice``, ``uniform``, ...).
        tune_config: see :class:`tune_ckpt.TuneConfig`.
        run_config: see :class:`tune_ckpt.RunConfig`.
    """

    def __init__(
        self,
        trainable: Any,
        *,
        param_space: dict[str, Any] | None = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
    ) -> None:
        self._trainable_cls = as_trainable_class(trainable)
        problem = _pickle_problem(trainable)
        if problem is not None:
            raise TrainableError(
                f"trainable {_name_of(trainable)!r} cannot be sent to Ray workers: {problem}"
            )
        if param_space is not None and not isinstance(param_space, dict):
            raise TypeError(f"param_space={param_space!r} is invalid: a dict or None")
        if tune_config is not None and not isinstance(tune_config, TuneConfig):
            raise TypeError(f"tune_config={tune_config!r} is invalid: a tune_ckpt.TuneConfig")
        if run_config is not None and not isinstance(run_config, RunConfig):
            raise TypeError(f"run_config={run_config!r} is invalid: a tune_ckpt.RunConfig")
        self._name = _name_of(trainable)
        self._param_space = param_space or {}
        self._tune_config = tune_config or TuneConfig()
        self._run_config = run_config or RunConfig()
        self._restored: tuple[StorageLocation, list[Trial]] | None = None

    # -- fit -------------------------------------------------------------------------------

    def fit(self) -> ResultGrid:
        """Run every trial to completion and return their results.

        A trial's exception does not raise here (see ``Result.error``) unless
        ``FailureConfig(fail_fast="raise")``.
        """
        # Built first: a bad TUNE_CKPT_STATUS_INTERVAL_S fails before anything is written.
        progress = Progress(
            self._run_config.verbose, self._tune_config.metric, self._tune_config.mode
        )
        if not ray.is_initialized():
            ray.init()
        if self._restored is not None:
            experiment, trials = self._restored
        else:
            experiment, trials = self._new_experiment()
        marker = self._write_marker(experiment)
        journal = Journal(experiment)
        try:
            # The marker goes whatever fails from here: a marker left behind makes
            # tune-ckpt gc treat the experiment as running.
            if self._restored is None:
                journal.write_header(self._name, self._settings(experiment))
                for trial in trials:
                    ResultFiles(experiment, trial.trial_dir).write_params(trial.config)
                    journal.record(trial)
                journal.flush()
            progress.start(trials, experiment)
            runner = TrialRunner(
                self._trainable_cls,
                trials,
                experiment,
                self._run_config,
                self._tune_config,
                journal,
                marker,
                progress,
            )
            runner.run()
        finally:
            progress.stop()
            experiment.delete_file(marker)
        progress.summary()
        results = [
            Result.from_trial(t, experiment, self._run_config.checkpoint_config) for t in trials
        ]
        return ResultGrid(
            results, experiment.uri(), self._tune_config.metric, self._tune_config.mode
        )

    def _settings(self, experiment: StorageLocation) -> dict[str, Any]:
        """The run and tune settings a restore needs, as JSON (a stop callable is pickled
        into its own file, the only non-JSON state)."""
        rc = self._run_config
        stop: Any = dict(rc.stop) if isinstance(rc.stop, Mapping) else None
        if callable(rc.stop):
            from ray import cloudpickle

            experiment.write_bytes(STOP_FILE, cloudpickle.dumps(rc.stop))
            stop = STOP_FILE
        return {
            "run_config": {
                "stop": stop,
                "checkpoint_config": dataclasses.asdict(rc.checkpoint_config),
                "failure_config": dataclasses.asdict(rc.failure_config),
                "verbose": rc.verbose,
                "checkpoint_transfer": rc.checkpoint_transfer,
                "storage_retry": dataclasses.asdict(rc.storage_retry),
            },
            "tune_config": dataclasses.asdict(self._tune_config),
        }

    def _new_experiment(self) -> tuple[StorageLocation, list[Trial]]:
        rc = self._run_config
        storage = StorageLocation.resolve(
            rc.storage_path, rc.storage_filesystem, retry=rc.storage_retry
        )
        name = rc.name or f"{self._name}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
        experiment = storage.child(name)
        configs = generate_configs(self._param_space, self._tune_config.num_samples)
        tag = uuid.uuid4().hex[:5]
        trials = []
        for index, config in enumerate(configs):
            trial_id = f"{tag}_{index:05d}"
            trials.append(Trial(trial_id, config, paths.join(f"{self._name}_{trial_id}")))
        return experiment, trials

    def _write_marker(self, experiment: StorageLocation) -> str:
        """Create the experiment folder and the marker workers look for; a storage path that
        cannot be written fails here, before any trial starts."""
        marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
        try:
            experiment.makedirs()
            experiment.write_bytes(marker, b"tune_ckpt")
        except STORAGE_ERRORS as exc:
            raise type(exc)(exc.path, f"storage_path cannot be written ({exc.cause})") from exc
        return marker

    # -- restore ---------------------------------------------------------------------------

    @classmethod
    def can_restore(cls, path: str | os.PathLike[str], storage_filesystem: Any = None) -> bool:
        """Whether ``path`` holds a tune_ckpt experiment."""
        location = StorageLocation.resolve(path, storage_filesystem)
        return journal_mod.exists(location)

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        trainable: Any,
        *,
        resume_unfinished: bool = True,
        resume_errored: bool = False,
        restart_errored: bool = False,
        param_space: dict[str, Any] | None = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        storage_filesystem: Any = None,
    ) -> Tuner:
        """A Tuner that continues the experiment at ``path`` (wherever it now lives).

        Finished trials are kept; unfinished ones resume from their latest checkpoint;
        errored ones are skipped, resumed (``resume_errored``) or restarted from scratch
        (``restart_errored``). Checkpoints on storage win over the journal.
        """
        retry = run_config.storage_retry if run_config is not None else None
        experiment = StorageLocation.resolve(path, storage_filesystem, retry=retry)
        header, trials_by_id = journal_mod.load(experiment)
        name = _name_of(trainable)
        if header.get("trainable") != name:
            raise ExperimentError(
                f"{experiment.uri()} was run with trainable {header.get('trainable')!r}, "
                f"not {name!r}"
            )
        settings = _restored_settings(header, experiment)
        if run_config is None:  # the policy the experiment was started with
            experiment = dataclasses.replace(experiment, retry=settings[0].storage_retry)
        tuner = cls(
            trainable,
            param_space=param_space,
            tune_config=tune_config or settings[1],
            run_config=run_config or settings[0],
        )
        store = CheckpointStore(experiment)
        trials = list(trials_by_id.values())
        for trial in trials:
            _reconcile(trial, experiment, store)
            if trial.status == TrialStatus.ERROR:
                if restart_errored:
                    # Storage wins on restore, so stale checkpoints must go, not just records.
                    for record in trial.checkpoints:
                        store.delete(record.path)
                    trial.checkpoints = []
                    ResultFiles(experiment, trial.trial_dir).truncate_after(0)
                    trial.last_result = {}
                if restart_errored or resume_errored:
                    trial.error = None
                    trial.num_failures = 0
                    trial.set_status(TrialStatus.PENDING)
            elif trial.status in (TrialStatus.RUNNING, TrialStatus.PENDING):
                trial.status = TrialStatus.PENDING if resume_unfinished else TrialStatus.TERMINATED
        tuner._restored = (experiment, trials)
        return tuner


def _restored_settings(
    header: dict[str, Any], experiment: StorageLocation
) -> tuple[RunConfig, TuneConfig]:
    """The RunConfig and TuneConfig an experiment was started with, from its journal."""
    rc = dict(header.get("run_config") or {})
    stop = rc.get("stop")
    if stop == STOP_FILE:
        from ray import cloudpickle

        stop = cloudpickle.loads(experiment.read_bytes(STOP_FILE))
    run_config = RunConfig(
        stop=stop,
        checkpoint_config=CheckpointConfig(**rc.get("checkpoint_config", {})),
        failure_config=FailureConfig(**rc.get("failure_config", {})),
        verbose=rc.get("verbose", 1),
        checkpoint_transfer=rc.get("checkpoint_transfer", "auto"),
        storage_retry=StorageRetry(**rc.get("storage_retry", {})),
    )
    return run_config, TuneConfig(**(header.get("tune_config") or {}))


def _reconcile(trial: Trial, experiment: StorageLocation, store: CheckpointStore) -> None:
    """Make the trial's checkpoint records match what storage holds, and its result files
    reach its newest checkpoint.

    A checkpoint committed after the journal's last word (the driver died before it heard
    of it) is used; the results leading up to it, which the driver may never have written,
    come from its manifest, so the history stays continuous.
    """
    on_storage = store.list_committed(trial.trial_dir)
    known = {r.path: r for r in trial.checkpoints}
    history = read_results(experiment, trial.trial_dir)
    last = max((int(r.get("training_iteration", 0)) for r in history), default=0)
    unknown = {}
    missing: list[dict[str, Any]] = []
    for relative in on_storage:
        if relative in known:
            continue
        committed = store.read(relative)
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
    trial.checkpoints = [
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
