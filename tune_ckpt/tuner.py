"""Tuner: the user-facing entry point (``fit``, ``restore``, ``can_restore``)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import uuid
from typing import Any

import ray

from tune_ckpt import journal as journal_mod
from tune_ckpt.config import (
    RunConfig,
    TuneConfig,
)
from tune_ckpt.driver.loop import TrialRunner
from tune_ckpt.driver.scheduling import STATE_FILE as SCHEDULER_STATE_FILE
from tune_ckpt.driver.scheduling import Scheduling
from tune_ckpt.driver.scheduling import restore_state as restore_scheduler_state
from tune_ckpt.driver.trial_source import STATE_FILE as SEARCHER_STATE_FILE
from tune_ckpt.driver.trial_source import TrialSource, build_trial
from tune_ckpt.errors import STORAGE_ERRORS, ExperimentError, TrainableError
from tune_ckpt.experiment_settings import (
    SCHEDULER_FILE,
    SEARCH_FILE,
    STOP_FILE,
    experiment_settings,
    restored_search,
    restored_settings,
)
from tune_ckpt.journal import Journal
from tune_ckpt.pickling_checks import check_param_space, pickle_problem, pickled_configs
from tune_ckpt.progress import Progress
from tune_ckpt.reconcile import check_restored_space, reconcile
from tune_ckpt.references import live_references
from tune_ckpt.result_files import ResultFiles, read_params
from tune_ckpt.result_grid import Result, ResultGrid
from tune_ckpt.search import SearchGenerator, generate_configs, space_structure
from tune_ckpt.storage import lease as lease_mod
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.retry import attempt_once
from tune_ckpt.trainable import as_trainable_class
from tune_ckpt.trial import Trial, TrialStatus
from tune_ckpt.trial_naming import name_trials

logger = logging.getLogger(__name__)

RESERVED = (
    journal_mod.JOURNAL_FILE,
    journal_mod.SEGMENTS_DIR,
    STOP_FILE,
    SCHEDULER_FILE,
    SCHEDULER_STATE_FILE,
    SEARCH_FILE,
    SEARCHER_STATE_FILE,
)
"""The experiment's own files, which no trial folder may take."""


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
        problem = pickle_problem(trainable)
        if problem is not None:
            raise TrainableError(
                f"trainable {_name_of(trainable)!r} cannot be sent to Ray workers: {problem}"
            )
        if param_space is not None and not isinstance(param_space, dict):
            raise TypeError(f"param_space={param_space!r} is invalid: a dict or None")
        if param_space is not None:
            check_param_space(param_space)
        if tune_config is not None and not isinstance(tune_config, TuneConfig):
            raise TypeError(f"tune_config={tune_config!r} is invalid: a tune_ckpt.TuneConfig")
        if run_config is not None and not isinstance(run_config, RunConfig):
            raise TypeError(f"run_config={run_config!r} is invalid: a tune_ckpt.RunConfig")
        self._name = _name_of(trainable)
        self._param_space = param_space or {}
        self._tune_config = tune_config or TuneConfig()
        if self._tune_config.search_alg is not None:
            self._check_search()
        self._tag = uuid.uuid4().hex[:5]  # new trials' ids: <tag>_<index>
        self._run_config = run_config or RunConfig()
        self._restored: tuple[StorageLocation, list[Trial]] | None = None
        self._restart: dict[str, list[str]] = {}
        """Trials ``restore(restart_errored=True)`` starts over: their stale checkpoints,
        deleted by ``fit()`` once it holds the experiment."""
        self._reapplied: set[str] = set()
        """Restored trials whose config a re-specified param_space changed: ``fit()``
        rewrites their ``params.json``/``params.pkl`` once it holds the experiment."""
        self._results: ResultGrid | None = None

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
        # Pickled before anything is written: a config that cannot be persisted fails here.
        pickled = pickled_configs(
            [t for t in trials if self._restored is None or t.trial_id in self._reapplied]
        )
        lease = self._take_lease(experiment)
        journal = Journal(experiment)
        try:
            # The lease goes whatever fails from here (a lease left behind would keep the
            # experiment locked until its heartbeat is older than its timeout).
            self._clear_restarted(experiment, journal)
            self._rewrite_reapplied(experiment, trials, pickled, journal)
            if self._restored is None:
                journal.write_header(
                    self._name,
                    experiment_settings(
                        self._run_config, self._tune_config, self._param_space, experiment
                    ),
                )
                for trial in trials:
                    ResultFiles(experiment, trial.trial_dir).write_params(
                        trial.config, pickled[trial.trial_id]
                    )
                    journal.record(trial)
                journal.flush()
            scheduling = self._scheduling(experiment, trials)
            source = self._trial_source(experiment, trials, journal, scheduling)
            progress.start(trials, experiment)
            runner = TrialRunner(
                self._trainable_cls,
                trials,
                experiment,
                self._run_config,
                self._tune_config,
                journal,
                lease.name,
                progress,
                scheduling,
                source,
            )
            runner.run()
        except BaseException:
            progress.stop()
            # The error that ended the sweep is the one to raise, not a failure to remove the
            # lease on the same broken storage (its heartbeat then lets it expire).
            try:
                with attempt_once():  # storage may be what failed: no second retry budget
                    lease.release()
            except STORAGE_ERRORS as exc:
                logger.error("could not remove the lease %s: %s", lease.name, exc)
            raise
        progress.stop()
        lease.release()
        progress.summary()
        self._results = self._result_grid(experiment, trials)
        return self._results

    def _scheduling(self, experiment: StorageLocation, trials: list[Trial]) -> Scheduling:
        """The scheduler with the trials it knows: a new sweep's are added to it; a restored
        sweep's scheduler continues from the state it saved."""
        tc = self._tune_config
        scheduling = Scheduling(tc.scheduler, trials, experiment, tc.metric, tc.mode)
        if self._restored is None:
            scheduling.add(trials)
        elif scheduling.active and not restore_scheduler_state(tc.scheduler, experiment):
            logger.warning(
                "%s has no saved state in %s: it starts afresh", scheduling.name, experiment.uri()
            )
        scheduling.save_state()
        return scheduling

    def _check_search(self) -> None:
        """Bad search settings (a space given twice, ...) fail here, on a copy of the
        searcher: the one given is pickled with the experiment before its first use."""
        from ray import cloudpickle

        tc = self._tune_config
        copy = cloudpickle.loads(cloudpickle.dumps(tc.search_alg))
        SearchGenerator(copy, self._param_space, tc.num_samples, tc.metric, tc.mode)

    def _trial_source(
        self,
        experiment: StorageLocation,
        trials: list[Trial],
        journal: Journal,
        scheduling: Scheduling,
    ) -> TrialSource:
        """With a search_alg, the searcher that creates trials as the sweep runs, continuing
        from its saved state on a restored sweep; else a source that creates none."""
        tc = self._tune_config
        generator = None
        if tc.search_alg is not None:
            generator = SearchGenerator(
                tc.search_alg, self._param_space, tc.num_samples, tc.metric, tc.mode
            )
        source = TrialSource(
            generator,
            trials,
            experiment,
            journal,
            scheduling,
            self._name,
            self._tag,
            (tc.trial_name_creator, tc.trial_dirname_creator),
            RESERVED,
        )
        if self._restored is not None:
            source.restore(list(trials))
        source.save_state()
        return source

    def _result_grid(self, experiment: StorageLocation, trials: list[Trial]) -> ResultGrid:
        results = [
            Result.from_trial(t, experiment, self._run_config.checkpoint_config) for t in trials
        ]
        return ResultGrid(
            results, experiment.uri(), self._tune_config.metric, self._tune_config.mode
        )

    def get_results(self) -> ResultGrid:
        """The results of the last ``fit()``; on a Tuner from :meth:`restore` that has not
        run yet, the results of what the experiment holds on storage."""
        if self._results is not None:
            return self._results
        if self._restored is not None:
            return self._result_grid(*self._restored)
        raise RuntimeError("get_results() needs results: call fit() first, or Tuner.restore()")

    def _clear_restarted(self, experiment: StorageLocation, journal: Journal) -> None:
        """Delete the checkpoints and results of the trials restarted from scratch. Only
        here, once this driver holds the experiment: a restore whose fit() never starts (Ray
        unreachable) must leave storage as it was."""
        if not self._restart or self._restored is None:
            return
        store = CheckpointStore(experiment)
        by_id = {t.trial_id: t for t in self._restored[1]}
        for trial_id, stale in self._restart.items():
            # Storage wins on restore, so stale checkpoints must go, not just records;
            # not those other trials refer to (a PBT exploit's donor checkpoint).
            live = live_references(self._restored[1])
            for relative in stale:
                if relative not in live:
                    store.delete(relative)
            ResultFiles(experiment, by_id[trial_id].trial_dir).truncate_after(0)
            by_id[trial_id].history_floor = 0
            journal.record(by_id[trial_id])
        journal.flush()
        self._restart = {}

    def _rewrite_reapplied(
        self,
        experiment: StorageLocation,
        trials: list[Trial],
        pickled: dict[str, bytes],
        journal: Journal,
    ) -> None:
        """Persist the configs a re-specified param_space changed, so a later restore
        without one starts from the values this run used."""
        if self._restored is None or not self._reapplied:
            return
        for trial in trials:
            if trial.trial_id in self._reapplied:
                ResultFiles(experiment, trial.trial_dir).write_params(
                    trial.config, pickled[trial.trial_id]
                )
                journal.record(trial)
        journal.flush()
        self._reapplied = set()

    def _new_experiment(self) -> tuple[StorageLocation, list[Trial]]:
        rc = self._run_config
        storage = StorageLocation.resolve(
            rc.storage_path, rc.storage_filesystem, retry=rc.storage_retry
        )
        name = rc.name or f"{self._name}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
        experiment = storage.child(name)
        tc = self._tune_config
        if tc.search_alg is not None:
            return experiment, []  # the searcher creates them as the sweep runs
        configs = generate_configs(self._param_space, tc.num_samples)
        trials = [
            build_trial(self._name, self._tag, index, config, self._param_space)
            for index, config in enumerate(configs)
        ]
        name_trials(trials, tc.trial_name_creator, tc.trial_dirname_creator, reserved=RESERVED)
        return experiment, trials

    def _take_lease(self, experiment: StorageLocation) -> lease_mod.Lease:
        """Create the experiment folder and take its lease (the marker workers look for):
        refused while another driver runs it; a storage path that cannot be written fails
        here, before any trial starts."""
        try:
            experiment.makedirs()
            return lease_mod.acquire(experiment)
        except STORAGE_ERRORS as exc:
            raise type(exc)(exc.path, f"storage_path cannot be written ({exc.cause})") from exc

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
        (``restart_errored``; their checkpoints and results are deleted by ``fit()``, not
        here). Checkpoints on storage win over the journal.
        """
        retry = run_config.storage_retry if run_config is not None else None
        experiment = StorageLocation.resolve(path, storage_filesystem, retry=retry)
        header, trials_by_id = journal_mod.load(experiment)
        # Reconciling writes result files: not while another driver runs the experiment.
        lease_mod.check_free(experiment)
        name = _name_of(trainable)
        if header.get("trainable") != name:
            raise ExperimentError(
                f"{experiment.uri()} was run with trainable {header.get('trainable')!r}, "
                f"not {name!r}"
            )
        settings = restored_settings(header, experiment)
        if run_config is None:  # the policy the experiment was started with
            experiment = dataclasses.replace(experiment, retry=settings[0].storage_retry)
        tuner = cls(
            trainable,
            param_space=param_space,
            tune_config=tune_config or settings[1],
            run_config=run_config or settings[0],
        )
        if param_space is not None:
            check_restored_space(header, param_space, experiment)
        elif (header.get("tune_config") or {}).get("search_alg") == SEARCH_FILE:
            # New trials' configs are completed with the space's constants.
            tuner._param_space = restored_search(experiment)["param_space"] or {}
        store = CheckpointStore(experiment)
        trials = list(trials_by_id.values())
        restart: dict[str, list[str]] = {}
        for trial in trials:
            # The journal holds configs as JSON; params.pkl holds them exactly.
            exact = read_params(experiment, trial.trial_dir)
            if exact is not None:
                trial.config = exact
            if param_space is not None:
                trial.config, changed = space_structure.apply_constants(trial.config, param_space)
                if changed:
                    tuner._reapplied.add(trial.trial_id)
            others = live_references(t for t in trials if t is not trial)
            reconcile(trial, experiment, store, elsewhere=others)
            if trial.status == TrialStatus.ERROR:
                if restart_errored:
                    # Deleted from storage by fit(), see Tuner._clear_restarted.
                    restart[trial.trial_id] = [r.path for r in trial.checkpoints]
                    trial.checkpoints = []
                    trial.last_result = {}
                if restart_errored or resume_errored:
                    trial.error = None
                    trial.num_failures = 0
                    trial.set_status(TrialStatus.PENDING)
            elif trial.status in (TrialStatus.RUNNING, TrialStatus.PENDING):
                trial.status = TrialStatus.PENDING if resume_unfinished else TrialStatus.TERMINATED
            elif trial.status == TrialStatus.PAUSED and not resume_unfinished:
                trial.status = TrialStatus.TERMINATED  # kept PAUSED: its scheduler resumes it
        tuner._restored = (experiment, trials)
        tuner._restart = restart
        return tuner
