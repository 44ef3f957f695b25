"""``tune_ckpt.run``: Ray Tune's older entry point, with its argument names, on ``Tuner``.

``run`` translates its arguments into ``TuneConfig``/``RunConfig`` and runs ``Tuner.fit()``
(or ``Tuner.restore(...).fit()`` with ``resume``); it returns an :class:`ExperimentAnalysis`
over the ``ResultGrid``. There is no second runner.
"""

from __future__ import annotations

import os
from typing import Any

from tune_ckpt.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from tune_ckpt.errors import TuneError
from tune_ckpt.result_grid import Result, ResultGrid
from tune_ckpt.trainable import with_resources
from tune_ckpt.tuner import Tuner

RESUME_VALUES = (False, True, None, "AUTO", "LOCAL", "REMOTE", "PROMPT", "ERRORED_ONLY")


class ExperimentAnalysis:
    """What ``tune_ckpt.run`` returns: Ray Tune's ``ExperimentAnalysis`` names over the
    results. A trial is represented by its :class:`~tune_ckpt.Result`."""

    def __init__(self, grid: ResultGrid, metric: str | None, mode: str | None) -> None:
        self._grid = grid
        self.default_metric = metric
        self.default_mode = mode
        self.experiment_path = grid.experiment_path

    @property
    def trials(self) -> list[Result]:
        return list(self._grid)

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        """The last result of each trial, by trial id."""
        return {str(r.metrics.get("trial_id", i)): r.metrics for i, r in enumerate(self._grid)}

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric, mode = metric or self.default_metric, mode or self.default_mode
        if metric is None or mode is None:
            raise ValueError(
                "no metric and mode: pass them, or run(metric=..., mode=...) (Ray Tune's "
                "best_* properties need them too)"
            )
        return metric, mode

    def get_best_trial(
        self, metric: str | None = None, mode: str | None = None, scope: str = "last"
    ) -> Result:
        metric, mode = self._metric_mode(metric, mode)
        return self._grid.get_best_result(metric, mode, scope)

    def get_best_config(
        self, metric: str | None = None, mode: str | None = None, scope: str = "last"
    ) -> dict[str, Any]:
        return self.get_best_trial(metric, mode, scope).config

    def get_best_checkpoint(
        self, trial: Result, metric: str | None = None, mode: str | None = None
    ) -> Any:
        """The trial's kept checkpoint with the best ``metric`` (as recorded with it), or
        None when none recorded it."""
        metric, mode = self._metric_mode(metric, mode)
        from tune_ckpt.metrics import as_score, lookup

        scored = [
            (score, checkpoint)
            for checkpoint, metrics in trial.best_checkpoints
            if (score := as_score(lookup(metrics, metric))) is not None
        ]
        if not scored:
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda pair: pair[0])[1]

    @property
    def best_trial(self) -> Result:
        return self.get_best_trial()

    @property
    def best_config(self) -> dict[str, Any]:
        return self.best_trial.config

    @property
    def best_result(self) -> dict[str, Any]:
        return self.best_trial.metrics

    @property
    def best_checkpoint(self) -> Any:
        return self.get_best_checkpoint(self.best_trial)

    @property
    def best_dataframe(self) -> Any:
        """The best trial's results, a row each (needs pandas)."""
        return self.best_trial.metrics_dataframe

    def dataframe(self, metric: str | None = None, mode: str | None = None) -> Any:
        """A row per trial: its last result, or with ``metric`` and ``mode`` its best."""
        return self._grid.get_dataframe(filter_metric=metric, filter_mode=mode)


def _checkpoint_config(
    checkpoint_freq: int,
    checkpoint_at_end: bool | None,
    keep_checkpoints_num: int | None,
    checkpoint_score_attr: str | None,
) -> CheckpointConfig:
    """``checkpoint_score_attr="min-loss"`` ranks by ``loss``, lowest best; a plain name
    ranks highest best, as in Ray Tune."""
    order = "max"
    attr = checkpoint_score_attr
    if attr is not None and attr.startswith("min-"):
        attr, order = attr[len("min-") :], "min"
    return CheckpointConfig(
        num_to_keep=keep_checkpoints_num,
        checkpoint_score_attribute=attr,
        checkpoint_score_order=order,
        checkpoint_frequency=checkpoint_freq,
        checkpoint_at_end=checkpoint_at_end,
    )


def run(
    run_or_experiment: Any,
    *,
    name: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    stop: Any = None,
    config: dict[str, Any] | None = None,
    resources_per_trial: dict[str, float] | None = None,
    num_samples: int = 1,
    storage_path: str | os.PathLike[str] | None = None,
    storage_filesystem: Any = None,
    search_alg: Any = None,
    scheduler: Any = None,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool | None = None,
    keep_checkpoints_num: int | None = None,
    checkpoint_score_attr: str | None = None,
    verbose: int | bool = 1,
    max_failures: int = 0,
    fail_fast: bool | str = False,
    resume: bool | str | None = False,
    reuse_actors: bool | None = None,
    max_concurrent_trials: int | None = None,
    raise_on_failed_trial: bool = True,
    callbacks: list[Any] | None = None,
    **unknown: Any,
) -> ExperimentAnalysis:
    """Run a sweep with Ray Tune's ``tune.run`` arguments; see :class:`~tune_ckpt.Tuner`.

    ``resume``: ``True``, ``"AUTO"``, ``"LOCAL"`` or ``"REMOTE"`` continue the experiment
    ``storage_path/name`` when it exists (through ``Tuner.restore``), else start it;
    ``"ERRORED_ONLY"`` also resumes errored trials. ``raise_on_failed_trial`` raises
    :class:`~tune_ckpt.TuneError` when a trial ended in ERROR. ``scheduler`` and
    ``search_alg`` are ``TuneConfig``'s.
    """
    if unknown:
        raise TypeError(
            f"run() got unexpected keyword arguments {sorted(unknown)}: tune_ckpt.run takes "
            "Ray Tune's tune.run arguments listed in its docstring"
        )
    if resume not in RESUME_VALUES:
        raise ValueError(f"resume={resume!r} is invalid: one of {RESUME_VALUES}")
    if resume == "PROMPT":
        raise ValueError('resume="PROMPT" is not supported: pass True, "AUTO" or False')
    trainable = run_or_experiment
    if resources_per_trial is not None:
        trainable = with_resources(trainable, resources_per_trial)
    tune_config = TuneConfig(
        num_samples=num_samples,
        metric=metric,
        mode=mode,
        max_concurrent_trials=max_concurrent_trials,
        reuse_actors=reuse_actors,
        scheduler=scheduler,
        search_alg=search_alg,
    )
    run_config = RunConfig(
        name=name,
        storage_path=storage_path,
        storage_filesystem=storage_filesystem,
        stop=stop,
        checkpoint_config=_checkpoint_config(
            checkpoint_freq, checkpoint_at_end, keep_checkpoints_num, checkpoint_score_attr
        ),
        failure_config=FailureConfig(max_failures=max_failures, fail_fast=fail_fast),
        verbose=verbose,
        callbacks=callbacks,
    )
    tuner = _resumed(trainable, config, tune_config, run_config, resume)
    if tuner is None:
        tuner = Tuner(trainable, param_space=config, tune_config=tune_config, run_config=run_config)
    grid = tuner.fit()
    errored = [r for r in grid if r.error is not None]
    if errored and raise_on_failed_trial:
        raise TuneError(
            f"{len(errored)} of {len(grid)} trials did not complete: "
            + ", ".join(os.path.basename(r.path.rstrip("/")) for r in errored)
            + f". Their errors are in {grid.experiment_path}"
        )
    return ExperimentAnalysis(grid, metric, mode)


def _resumed(
    trainable: Any,
    config: dict[str, Any] | None,
    tune_config: TuneConfig,
    run_config: RunConfig,
    resume: bool | str | None,
) -> Tuner | None:
    """``Tuner.restore`` of the named experiment when ``resume`` asks and it exists."""
    if not resume or run_config.name is None:
        return None
    from tune_ckpt.storage.location import StorageLocation

    storage = StorageLocation.resolve(
        run_config.storage_path, run_config.storage_filesystem, retry=run_config.storage_retry
    )
    path = storage.child(run_config.name)
    # The resolved filesystem and root: a URI's options (endpoint, region) come along.
    if not Tuner.can_restore(path.root, path.fs):
        return None
    return Tuner.restore(
        path.root,
        trainable,
        resume_errored=resume == "ERRORED_ONLY",
        param_space=config,
        tune_config=tune_config,
        run_config=run_config,
        storage_filesystem=path.fs,
    )
