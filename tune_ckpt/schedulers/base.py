"""The scheduler interface (Ray Tune's names) and the FIFO scheduler.

A scheduler decides; the driver acts. Hooks receive a read-only :class:`SchedulerContext`
(Ray Tune passes its controller there) and return a :class:`SchedulerDecision` for the
reporting trial. What a scheduler wants done to *other* trials (stop a paused trial, save a
checkpoint, exploit another trial's checkpoint) it queues as action objects that the driver
collects with :meth:`TrialScheduler.pop_actions` after every hook call.

State format (``save_state``/``restore_state``): a JSON-able dict
``{"version": 1, "scheduler": <class name>, "metric": ..., "mode": ..., ...}`` plus the
fields each scheduler documents. Trials are named by ``trial_id`` only, so the state can be
saved with the journal and restored against the journal's trials.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from tune_ckpt.schedulers.actions import SchedulerAction
from tune_ckpt.trial import Trial, TrialStatus

STATE_VERSION = 1
"""Version of the ``save_state`` format; ``restore_state`` refuses any other."""

DEFAULT_METRIC = "_metric"
"""The metric used when only a mode was given, as in Ray Tune."""


class SchedulerDecision(str, enum.Enum):
    """What happens to the trial whose result was just handled.

    The values are Ray Tune's strings, so code comparing with them keeps working.
    """

    CONTINUE = "CONTINUE"  # keep training
    PAUSE = "PAUSE"  # checkpoint, give the resources back, resume later
    STOP = "STOP"  # end the trial (TERMINATED)
    NOOP = "NOOP"  # the scheduler already arranged what happens (an Exploit action)


@runtime_checkable
class SchedulerContext(Protocol):
    """What a scheduler may read from the driver: the experiment's trials, in order."""

    def get_trials(self) -> Sequence[Trial]: ...


@dataclass
class TrialsView:
    """A :class:`SchedulerContext` over a list of trials the driver keeps up to date."""

    trials: list[Trial] = field(default_factory=list)

    def get_trials(self) -> Sequence[Trial]:
        return self.trials


class StateError(ValueError):
    """A saved scheduler state that does not fit this scheduler."""


def check_mode(owner: str, mode: str | None) -> None:
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"{owner}(mode={mode!r}) is invalid: 'min', 'max' or None")


class TrialScheduler:
    """Base class of all schedulers; its defaults behave like :class:`FIFOScheduler`.

    A subclass that overrides only ``on_trial_result`` (and perhaps
    ``choose_trial_to_run``) works: every other hook has a harmless default.
    """

    CONTINUE: ClassVar[SchedulerDecision] = SchedulerDecision.CONTINUE
    PAUSE: ClassVar[SchedulerDecision] = SchedulerDecision.PAUSE
    STOP: ClassVar[SchedulerDecision] = SchedulerDecision.STOP
    NOOP: ClassVar[SchedulerDecision] = SchedulerDecision.NOOP

    _metric: str | None = None
    _mode: str | None = None

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    @property
    def metric_op(self) -> float:
        """+1 when higher is better, -1 when lower is; multiply a metric by it to rank."""
        return -1.0 if self._mode == "min" else 1.0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric``/``mode`` from ``TuneConfig`` unless already set (Ray's rule:
        returns False when both sides set the same property)."""
        check_mode(type(self).__name__, mode)
        if (self._metric and metric) or (self._mode and mode):
            return False
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    def _require_metric_and_mode(self) -> None:
        if not self._metric or not self._mode:
            raise ValueError(
                f"{type(self).__name__} has no metric ({self._metric!r}) or mode "
                f"({self._mode!r}): pass them to the scheduler or to TuneConfig"
            )

    # -- hooks ------------------------------------------------------------------------
    def on_trial_add(self, runner: SchedulerContext, trial: Trial) -> None:
        """A trial joined the experiment (before it first runs)."""

    def on_trial_error(self, runner: SchedulerContext, trial: Trial) -> None:
        """A trial failed for good (past its failure budget)."""

    def on_trial_result(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> SchedulerDecision:
        """A running trial reported ``result``; decide its fate."""
        return SchedulerDecision.CONTINUE

    def on_trial_complete(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        """A trial finished on its own (done, stop criterion, or this scheduler's STOP)."""

    def on_trial_remove(self, runner: SchedulerContext, trial: Trial) -> None:
        """A trial was stopped by the driver without completing (e.g. a StopTrial action)."""

    def choose_trial_to_run(self, runner: SchedulerContext) -> Trial | None:
        """The next trial to start when resources are free: the first PENDING trial, else
        the first PAUSED one (Ray's FIFO order)."""
        trials = runner.get_trials()
        for status in (TrialStatus.PENDING, TrialStatus.PAUSED):
            for trial in trials:
                if trial.status == status:
                    return trial
        return None

    def debug_string(self) -> str:
        return f"Using {type(self).__name__}"

    # -- actions ------------------------------------------------------------------------
    def pop_actions(self) -> list[SchedulerAction]:
        """What the scheduler asked for since the last call, oldest first; clears them.

        The driver calls this after every hook call and carries the actions out in order.
        """
        actions: list[SchedulerAction] = self.__dict__.get("_pending_actions", [])
        self.__dict__["_pending_actions"] = []
        return actions

    def _emit(self, action: SchedulerAction) -> None:
        self.__dict__.setdefault("_pending_actions", []).append(action)

    # -- crash recovery ------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        """A JSON-able snapshot that ``restore_state`` turns back into the same decisions."""
        return {
            "version": STATE_VERSION,
            "scheduler": type(self).__name__,
            "metric": self._metric,
            "mode": self._mode,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from ``save_state``'s snapshot (the scheduler was built with the same
        arguments). Raises :class:`StateError` for another version or scheduler."""
        version = state.get("version")
        if version != STATE_VERSION:
            raise StateError(
                f"scheduler state version={version!r} is not supported: "
                f"this tune_ckpt reads version {STATE_VERSION}"
            )
        name = state.get("scheduler")
        if name != type(self).__name__:
            raise StateError(
                f"scheduler state scheduler={name!r} does not fit {type(self).__name__}: "
                "restore with the scheduler the experiment was started with"
            )
        self._metric = state.get("metric")
        self._mode = state.get("mode")


class FIFOScheduler(TrialScheduler):
    """Runs trials in the order they were added, each to its end (what runs by default)."""

    def __init__(self) -> None:
        pass
