"""The median stopping rule (Ray Tune's ``MedianStoppingRule``).

A trial at time ``t >= grace_period`` stops when its best score so far is strictly worse
than the median, over the other trials that reached ``t``, of their mean score between
``grace_period`` and ``t``. With fewer than ``min_samples_required`` such trials it yields
(PAUSE) to waiting trials at most every ``min_time_slice``, else continues. A stopped trial
is paused instead when ``hard_stop=False`` and then runs on like under FIFO.

State (``save_state``): the base fields plus ``results`` (``{trial_id: [[time, metric],
...]}``, the (time, metric) pairs of every result), ``stopped`` (trial ids) and
``last_pause`` (``{trial_id: time}``).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.schedulers.base import (
    SchedulerContext,
    SchedulerDecision,
    TrialScheduler,
    check_mode,
)
from tune_ckpt.trial import Trial, TrialStatus


class MedianStoppingRule(TrialScheduler):
    """Ray Tune's arguments and defaults.

    Args:
        time_attr: result field that measures progress.
        metric: result field to compare (``"a/b"`` reads nested results).
        mode: ``"min"`` or ``"max"``.
        grace_period: no trial stops before this time; earlier results are not averaged.
        min_samples_required: other trials needed at a time before comparing.
        min_time_slice: with too few samples, pause at most once per this much time.
        hard_stop: STOP a trial below the median; False pauses it instead.
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 60.0,
        min_samples_required: int = 3,
        min_time_slice: float = 0,
        hard_stop: bool = True,
    ) -> None:
        name = type(self).__name__
        check_mode(name, mode)
        if grace_period < 0:
            raise ValueError(f"{name}(grace_period={grace_period!r}) is invalid: must be >= 0")
        if min_samples_required < 1:
            raise ValueError(
                f"{name}(min_samples_required={min_samples_required!r}) is invalid: must be >= 1"
            )
        if min_time_slice < 0:
            raise ValueError(f"{name}(min_time_slice={min_time_slice!r}) is invalid: must be >= 0")
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._min_time_slice = min_time_slice
        self._hard_stop = hard_stop
        self._results: dict[str, list[tuple[float, float]]] = {}
        self._stopped: set[str] = set()
        self._last_pause: dict[str, float] = {}

    def on_trial_add(self, runner: SchedulerContext, trial: Trial) -> None:
        self._require_metric_and_mode()

    def _observe(self, trial: Trial, result: dict[str, Any]) -> float | None:
        time = lookup(result, self._time_attr)
        value = as_score(lookup(result, self._metric or ""))
        if time is None or value is None:
            return None
        self._results.setdefault(trial.trial_id, []).append((float(time), value))
        return float(time)

    def on_trial_result(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> SchedulerDecision:
        if trial.trial_id in self._stopped:
            return SchedulerDecision.CONTINUE  # paused once (hard_stop=False): FIFO now
        time = self._observe(trial, result)
        if time is None or time < self._grace_period:
            return SchedulerDecision.CONTINUE
        others = [
            t
            for t, results in self._results.items()
            if t != trial.trial_id and results[-1][0] >= time
        ]
        if len(others) < self._min_samples_required:
            return self._on_insufficient_samples(runner, trial, time)
        median = statistics.median(self._running_mean(t, time) for t in others)
        best = self.metric_op * max(self.metric_op * v for _, v in self._results[trial.trial_id])
        if self.metric_op * median > self.metric_op * best:
            self._stopped.add(trial.trial_id)
            return SchedulerDecision.STOP if self._hard_stop else SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE

    def _on_insufficient_samples(
        self, runner: SchedulerContext, trial: Trial, time: float
    ) -> SchedulerDecision:
        since = time - self._last_pause.get(trial.trial_id, -math.inf)
        waiting = any(
            t.status in (TrialStatus.PENDING, TrialStatus.PAUSED)
            for t in runner.get_trials()
            if t.trial_id != trial.trial_id
        )
        if since > self._min_time_slice and waiting:
            self._last_pause[trial.trial_id] = time
            return SchedulerDecision.PAUSE
        return SchedulerDecision.CONTINUE

    def _running_mean(self, trial_id: str, time: float) -> float:
        scoped = [v for t, v in self._results[trial_id] if self._grace_period <= t <= time]
        return statistics.fmean(scoped) if scoped else math.nan

    def on_trial_complete(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        self._observe(trial, result)

    def debug_string(self) -> str:
        return f"Using MedianStoppingRule: num_stopped={len(self._stopped)}."

    def save_state(self) -> dict[str, Any]:
        state = super().save_state()
        state.update(
            results={t: [list(r) for r in rs] for t, rs in self._results.items()},
            stopped=sorted(self._stopped),
            last_pause=dict(self._last_pause),
        )
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        super().restore_state(state)
        self._results = {
            t: [(float(a), float(b)) for a, b in rs] for t, rs in state["results"].items()
        }
        self._stopped = set(state["stopped"])
        self._last_pause = {t: float(v) for t, v in state["last_pause"].items()}
