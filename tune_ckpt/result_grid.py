"""Result and ResultGrid: what ``Tuner.fit()`` returns."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt import result as keys
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.errors import TrialError
from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.retention import rank
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus


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
        error: a TrialError with the worker's traceback if the trial failed, else None.
    """

    metrics: dict[str, Any]
    config: dict[str, Any]
    checkpoint: Checkpoint | None
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = field(default_factory=list)
    path: str = ""
    error: TrialError | None = None
    status: TrialStatus = TrialStatus.TERMINATED

    @classmethod
    def from_trial(
        cls, trial: Trial, experiment: StorageLocation, checkpoint_config: CheckpointConfig
    ) -> Result:
        def handle(relative: str) -> Checkpoint:
            location = experiment.child(relative)
            return Checkpoint(location.root, location.fs)

        latest = trial.latest_checkpoint
        # The counts as they stand at the end, which the last result may predate.
        metrics = {
            **trial.last_result,
            keys.NUM_FAILURES: trial.num_failures,
            keys.NUM_PREEMPTIONS: trial.num_preemptions,
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
            error=TrialError(trial.error) if trial.error else None,
            status=trial.status,
        )


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
        self, metric: str | None = None, mode: str | None = None, filter_nan_and_inf: bool = True
    ) -> Result:
        """The result with the best last value of ``metric`` (``"min"``/``"max"``); both
        default to the TuneConfig's."""
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
            score = as_score(lookup(result.metrics, metric))
            if score is None or (filter_nan_and_inf and math.isinf(score)):
                continue
            scored.append((score, result))
        if not scored:
            raise ValueError(
                f"no trial reported a numeric {metric!r}; metrics seen: "
                f"{sorted({k for r in self._results for k in r.metrics})}"
            )
        pick = max if mode == "max" else min
        return pick(scored, key=lambda pair: pair[0])[1]

    def get_dataframe(self) -> Any:
        """The last result of every trial as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("get_dataframe() needs pandas: pip install pandas") from exc
        rows = []
        for result in self._results:
            row = dict(result.metrics)
            row.update({f"config/{k}": v for k, v in result.config.items()})
            row["path"] = result.path
            rows.append(row)
        return pd.DataFrame(rows)
