"""Result and ResultGrid: what ``Tuner.fit()`` returns."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt import result as keys
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.errors import TrialError, trial_error
from tune_ckpt.goodput import useful_seconds
from tune_ckpt.metrics import as_score, flatten, lookup, revived
from tune_ckpt.result_files import read_results
from tune_ckpt.retention import rank
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus

SCOPES = ("last", "avg", "last-5-avg", "last-10-avg", "all")
"""What ``get_best_result(scope=...)`` ranks trials by: the last value of the metric, the
mean of all, of the last 5 or of the last 10 values, or the best value ever reported."""


@dataclass
class Result:
    """The outcome of one trial.

    Attributes:
        metrics: the last reported result.
        config: the trial's configuration.
        checkpoint: the latest committed checkpoint, or None.
        best_checkpoints: ``(Checkpoint, metrics)`` for every checkpoint retention kept,
            best first (by ``checkpoint_score_attribute``, else newest first).
        path: the trial's folder (local path or URI).
        error: if the trial failed, a TrialError whose text is the worker's traceback, also
            an instance of the exception class the trainable raised when that class can be
            imported here (``isinstance(result.error, ZeroDivisionError)``); else None.
    """

    metrics: dict[str, Any]
    config: dict[str, Any]
    checkpoint: Checkpoint | None
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = field(default_factory=list)
    path: str = ""
    error: TrialError | None = None
    status: TrialStatus = TrialStatus.TERMINATED
    # Where the trial's result.json lives; read on first use, since most callers only
    # want the last result.
    _source: tuple[StorageLocation, str] | None = field(default=None, repr=False, compare=False)
    _history: list[dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def history(self) -> list[dict[str, Any]]:
        """Every result the trial reported, oldest first, as written to its result.json
        (results before a restart from scratch are not kept). Read once, then cached."""
        if self._history is None:
            if self._source is None:
                self._history = [dict(self.metrics)] if self.metrics else []
            else:
                experiment, trial_dir = self._source
                self._history = [revived(r) for r in read_results(experiment, trial_dir)]
        return self._history

    @property
    def metrics_dataframe(self) -> Any:
        """Every reported result as a pandas DataFrame, a row per result, nested metrics
        flattened to ``a/b`` columns (needs pandas)."""
        pd = _pandas("Result.metrics_dataframe")
        return pd.DataFrame([flatten(r) for r in self.history()])

    @classmethod
    def from_trial(
        cls, trial: Trial, experiment: StorageLocation, checkpoint_config: CheckpointConfig
    ) -> Result:
        def handle(relative: str) -> Checkpoint:
            return Checkpoint.at(experiment.child(relative))

        latest = trial.latest_checkpoint
        # The counts as they stand at the end, which the last result may predate.
        metrics = {
            **trial.last_result,
            keys.NUM_FAILURES: trial.num_failures,
            keys.NUM_PREEMPTIONS: trial.num_preemptions,
            **trial.goodput.fields(useful_seconds(trial.last_result)),
        }
        return cls(
            metrics=metrics,
            config=dict(trial.config),
            checkpoint=handle(latest.path) if latest else None,
            best_checkpoints=[
                (handle(r.path), dict(r.metrics))
                for r in rank(trial.checkpoints, checkpoint_config)
            ],
            path=experiment.uri(trial.trial_dir),
            error=trial_error(trial.error) if trial.error else None,
            status=trial.status,
            _source=(experiment, trial.trial_dir),
        )


def _pandas(caller: str) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(f"{caller} needs pandas: pip install pandas") from exc
    return pd


def _best_row(rows: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The first of ``rows`` where ``metric`` is lowest (``"min"``) or highest, or None
    if no row has it as a number."""
    best: tuple[float, dict[str, Any]] | None = None
    for row in rows:
        score = as_score(lookup(row, metric))
        if score is None:
            continue
        if best is None or (score > best[0] if mode == "max" else score < best[0]):
            best = (score, row)
    return None if best is None else best[1]


def _scope_score(result: Result, metric: str, mode: str, scope: str) -> float | None:
    """The number ``scope`` ranks ``result`` by, or None if it never reported ``metric``
    as a number (NaN counts as not reported)."""
    if scope == "last":
        return as_score(lookup(result.metrics, metric))
    values = [
        score for row in result.history() if (score := as_score(lookup(row, metric))) is not None
    ]
    if not values:
        return None
    if scope == "all":
        return max(values) if mode == "max" else min(values)
    if scope != "avg":
        values = values[-int(scope.split("-")[1]) :]
    return sum(values) / len(values)


class ResultGrid:
    """The results of all trials of an experiment, in trial order."""

    def __init__(
        self,
        results: list[Result],
        experiment_path: str,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        self._results = results
        self.experiment_path = experiment_path
        self._metric = metric
        self._mode = mode

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, index: int) -> Result:
        return self._results[index]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[TrialError]:
        """The errors of the trials that failed."""
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    @property
    def num_terminated(self) -> int:
        return sum(1 for r in self._results if r.status == TrialStatus.TERMINATED)

    def get_best_result(
        self,
        metric: str | None = None,
        mode: str | None = None,
        scope: str = "last",
        filter_nan_and_inf: bool = True,
    ) -> Result:
        """The best trial's result by ``metric`` and ``mode`` (``"min"``/``"max"``), both
        defaulting to the TuneConfig's. With neither, the only result of a one-trial
        experiment.

        ``scope`` (one of ``SCOPES``) says which value of each trial counts: ``"last"`` its
        last, ``"avg"`` the mean of all, ``"last-5-avg"``/``"last-10-avg"`` the mean of the
        last 5 or 10, ``"all"`` its best ever by ``mode``. Nested metrics are named with
        ``/`` (``"eval/loss"``). With ``filter_nan_and_inf`` a trial whose value is
        infinite is never picked; NaN values are never used.
        """
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r} is invalid: one of {', '.join(SCOPES)}")
        if len(self._results) == 1 and not (metric or mode or self._metric or self._mode):
            return self._results[0]  # nothing to rank, as Ray Tune
        if (metric is None) != (mode is None) and (self._metric is None or self._mode is None):
            raise ValueError(
                f"get_best_result(metric={metric!r}, mode={mode!r}): give both metric and mode, "
                "or set them in TuneConfig"
            )
        metric = metric or self._metric
        mode = mode or self._mode
        if metric is None or mode is None:
            raise ValueError(
                "get_best_result() needs a metric and a mode: pass them or set "
                "TuneConfig(metric=..., mode=...)"
            )
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r} is invalid: 'min' or 'max'")
        scored = []
        for result in self._results:
            score = _scope_score(result, metric, mode, scope)
            if score is None or (filter_nan_and_inf and math.isinf(score)):
                continue
            scored.append((score, result))
        if not scored:
            raise ValueError(
                f"no trial reported a numeric {metric!r}; metrics seen: "
                f"{sorted({k for r in self._results for k in flatten(r.metrics)})}"
            )
        pick = max if mode == "max" else min
        return pick(scored, key=lambda pair: pair[0])[1]

    def get_dataframe(
        self, filter_metric: str | None = None, filter_mode: str | None = None
    ) -> Any:
        """A pandas DataFrame with a row per trial: its last result, or with
        ``filter_metric`` and ``filter_mode`` (``"min"``/``"max"``) the result where that
        metric was lowest or highest (the last result if it never reported it). Nested
        metrics become ``a/b`` columns and the config ``config/...`` columns; ``path`` (and
        ``logdir``, Ray Tune's name for it) is the trial's folder. Needs pandas."""
        if filter_mode not in (None, "min", "max"):
            raise ValueError(f"filter_mode={filter_mode!r} is invalid: 'min', 'max' or None")
        if filter_mode is not None and filter_metric is None:
            raise ValueError(
                f"get_dataframe(filter_mode={filter_mode!r}) needs filter_metric as well"
            )
        pd = _pandas("get_dataframe()")
        rows = []
        for result in self._results:
            row = result.metrics
            if filter_metric is not None and filter_mode is not None:
                row = _best_row(result.history(), filter_metric, filter_mode) or row
            flat = flatten(row)
            flat.update(flatten(result.config, "config/"))
            flat["path"] = flat["logdir"] = result.path
            rows.append(flat)
        return pd.DataFrame(rows)
