"""The driver's decisions, apart from Ray: when a trial stops, and what happens after it
fails. Plain values in, enums out, so they are tested without a cluster."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from tune_ckpt.config import FailureConfig, StopCallable, stop_value_reached
from tune_ckpt.metrics import lookup
from tune_ckpt.trial import Trial

MAX_STARTUP_LOSSES = 3
"""An actor lost before it ever answered is the cluster's loss (placed on a dying node), not
the trial's failure, this many times in a row; past that it counts, so a trainable whose
process dies while starting still uses up its failures."""


class StopKeyError(ValueError):
    """A ``stop`` criterion names a metric the results do not have."""


class StopRule:
    """``RunConfig.stop``: a dict of thresholds (also evaluated in the worker, so it can run
    several steps per call), a callable (the driver only), or nothing."""

    def __init__(self, stop: Mapping[str, Any] | StopCallable | None) -> None:
        self._stop = stop
        self.thresholds: dict[str, float | bool] | None = (
            {k: v if v is True else float(v) for k, v in stop.items()}
            if isinstance(stop, Mapping)
            else ({} if stop is None else None)
        )  # fmt: skip
        """The thresholds a worker can check; None when only the driver can decide."""

    def reached(self, trial_id: str, result: dict[str, Any]) -> bool:
        stop = self._stop
        if stop is None:
            return False
        if isinstance(stop, Mapping):
            for key, threshold in stop.items():
                value = lookup(result, key)
                if value is None:
                    available = sorted(k for k in result if k != "config")
                    raise StopKeyError(
                        f"stop criterion {key!r} is not a metric of trial {trial_id}'s "
                        f"results; available: {available}"
                    )
                if stop_value_reached(value, threshold):
                    return True
            return False
        return bool(stop(trial_id, result))


class AfterFailure(enum.Enum):
    """What becomes of a trial that failed."""

    RETRY = "retry"  # back to pending, restored from its latest checkpoint
    ERROR = "error"  # ends in ERROR; the sweep goes on
    STOP_SWEEP = "stop_sweep"  # ends in ERROR and fail_fast ends the sweep
    RAISE = "raise"  # as STOP_SWEEP, and fit() re-raises the error


def after_failure(trial: Trial, config: FailureConfig) -> AfterFailure:
    """The decision for ``trial``, whose ``num_failures`` already counts this failure."""
    budget = config.max_failures
    if budget == -1 or trial.num_failures <= budget:
        return AfterFailure.RETRY
    if config.fail_fast == "raise":
        return AfterFailure.RAISE
    return AfterFailure.STOP_SWEEP if config.fail_fast else AfterFailure.ERROR


class StartupLosses:
    """Counts, per trial, actors lost before they answered (see ``MAX_STARTUP_LOSSES``)."""

    def __init__(self) -> None:
        self._losses: dict[str, int] = {}

    def answered(self, trial_id: str) -> None:
        self._losses.pop(trial_id, None)

    def forgive(self, trial_id: str) -> bool:
        """Record one more loss; True while it is the cluster's, not the trial's."""
        losses = self._losses.get(trial_id, 0) + 1
        self._losses[trial_id] = losses
        return losses <= MAX_STARTUP_LOSSES
