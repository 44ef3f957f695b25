"""Asynchronous successive halving (ASHA): stops trials, never pauses them.

Ray Tune's rung rule: bracket ``s`` has rungs at ``grace_period * rf**(k + s)`` up to
``max_t``. When a trial first reaches a rung (the highest rung at or below its time that it
is not recorded in), its score is compared with the ``1 - 1/rf`` quantile (linear
interpolation, NaNs ignored) of the scores already recorded there; strictly below stops it,
ties continue. Its score is recorded either way. At ``max_t`` a trial stops when
``stop_last_trials`` is set. Scores are ``metric`` for ``mode="max"`` and ``-metric`` for
``"min"``. Trials go to brackets at random, weighted by ``exp(rungs - most rungs)``.

Departure from Ray: the rung count is computed exactly (a rung at ``max_t`` is kept where
Ray's floating-point logarithm can drop it, e.g. ``max_t=1000, rf=10``), and the bracket
draw uses a seeded generator kept in the saved state.

State (``save_state``): the base fields plus ``rungs`` (per bracket, a list of
``[milestone, {trial_id: score}]`` from the highest milestone down), ``trial_bracket``
(``{trial_id: bracket index}`` for live trials), ``num_stopped`` and ``rng`` (the bracket
draw's generator state).
"""

from __future__ import annotations

import math
import random
from typing import Any

from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.schedulers._rng import rng_from_json, rng_to_json
from tune_ckpt.schedulers.base import (
    SchedulerContext,
    SchedulerDecision,
    TrialScheduler,
    check_mode,
)
from tune_ckpt.trial import Trial


def quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation, NaNs ignored (what
    numpy's ``nanpercentile`` computes); None for no values, NaN when all are NaN."""
    if not values:
        return None
    finite = sorted(v for v in values if not math.isnan(v))
    if not finite:
        return math.nan
    position = q * (len(finite) - 1)
    low = math.floor(position)
    high = min(low + 1, len(finite) - 1)
    return finite[low] + (finite[high] - finite[low]) * (position - low)


def rung_milestones(grace_period: float, max_t: float, rf: float, s: int) -> list[float]:
    """Bracket ``s``'s milestones, highest first: ``grace * rf**(k + s) <= max_t``."""
    milestones = []
    k = 0
    while True:
        milestone = grace_period * rf ** (k + s)
        if milestone > max_t * (1 + 1e-12):
            break
        milestones.append(milestone)
        k += 1
    return list(reversed(milestones))


class AsyncHyperBandScheduler(TrialScheduler):
    """ASHA, Ray Tune's arguments and defaults.

    Args:
        time_attr: result field that measures progress; must not decrease.
        metric: result field to rank by (``"a/b"`` reads nested results).
        mode: ``"min"`` or ``"max"``.
        max_t: trials stop at this time when ``stop_last_trials`` is set.
        grace_period: the first rung; no trial stops before it.
        reduction_factor: only the best ``1/reduction_factor`` of each rung go on.
        brackets: number of brackets (different first rungs).
        stop_last_trials: stop trials at ``max_t``; if False they run on.
        seed: seeds the bracket draw (only used with several brackets).
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
        seed: int | None = None,
    ) -> None:
        name = type(self).__name__
        check_mode(name, mode)
        if not max_t > 0:
            raise ValueError(f"{name}(max_t={max_t!r}) is invalid: must be > 0")
        if not grace_period > 0:
            raise ValueError(f"{name}(grace_period={grace_period!r}) is invalid: must be > 0")
        if grace_period > max_t:
            raise ValueError(
                f"{name}(grace_period={grace_period!r}) is invalid: must be <= max_t={max_t!r}"
            )
        if not reduction_factor > 1:
            raise ValueError(
                f"{name}(reduction_factor={reduction_factor!r}) is invalid: must be > 1"
            )
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise ValueError(f"{name}(brackets={brackets!r}) is invalid: an int >= 1")
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._max_t = max_t
        self._grace_period = grace_period
        self._rf = reduction_factor
        self._stop_last_trials = stop_last_trials
        # Per bracket: [milestone, {trial_id: score}], highest milestone first.
        self._rungs: list[list[tuple[float, dict[str, float]]]] = [
            [(m, {}) for m in rung_milestones(grace_period, max_t, reduction_factor, s)]
            for s in range(brackets)
        ]
        self._trial_bracket: dict[str, int] = {}
        self._num_stopped = 0
        self._rng = random.Random(seed)

    def on_trial_add(self, runner: SchedulerContext, trial: Trial) -> None:
        self._require_metric_and_mode()
        if len(self._rungs) == 1:
            self._trial_bracket[trial.trial_id] = 0
            return
        sizes = [len(rungs) for rungs in self._rungs]
        weights = [math.exp(size - max(sizes)) for size in sizes]
        index = self._rng.choices(range(len(sizes)), weights=weights)[0]
        self._trial_bracket[trial.trial_id] = index

    def _time_and_score(self, result: dict[str, Any]) -> tuple[float, float | None] | None:
        time = lookup(result, self._time_attr)
        raw = lookup(result, self._metric or "")
        if time is None or raw is None:
            return None
        score = as_score(raw)
        if score is None and isinstance(raw, float):  # NaN: recorded, never ranked
            return float(time), math.nan
        return float(time), None if score is None else self.metric_op * score

    def on_trial_result(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> SchedulerDecision:
        observed = self._time_and_score(result)
        if observed is None:
            return SchedulerDecision.CONTINUE
        time, score = observed
        if time >= self._max_t and self._stop_last_trials:
            decision = SchedulerDecision.STOP
        else:
            decision = self._on_bracket_result(trial.trial_id, time, score)
        if decision == SchedulerDecision.STOP:
            self._num_stopped += 1
        return decision

    def _on_bracket_result(
        self, trial_id: str, time: float, score: float | None
    ) -> SchedulerDecision:
        bracket = self._trial_bracket.get(trial_id)
        if bracket is None:
            return SchedulerDecision.CONTINUE
        for milestone, recorded in self._rungs[bracket]:
            if time < milestone:
                continue
            if trial_id in recorded:
                if not self._stop_last_trials:
                    break  # already judged at this rung and every rung below
                continue
            cutoff = quantile(list(recorded.values()), 1 - 1 / self._rf)
            stop = score is not None and cutoff is not None and score < cutoff
            if score is not None:
                recorded[trial_id] = score
            return SchedulerDecision.STOP if stop else SchedulerDecision.CONTINUE
        return SchedulerDecision.CONTINUE

    def on_trial_complete(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        observed = self._time_and_score(result)
        if observed is not None:
            self._on_bracket_result(trial.trial_id, *observed)
        self._trial_bracket.pop(trial.trial_id, None)

    def on_trial_remove(self, runner: SchedulerContext, trial: Trial) -> None:
        self._trial_bracket.pop(trial.trial_id, None)

    def on_trial_error(self, runner: SchedulerContext, trial: Trial) -> None:
        self._trial_bracket.pop(trial.trial_id, None)

    def cutoffs(self, bracket: int = 0) -> list[tuple[float, float | None]]:
        """``(milestone, cutoff)`` of each rung of ``bracket``, highest first."""
        return [(m, quantile(list(r.values()), 1 - 1 / self._rf)) for m, r in self._rungs[bracket]]

    def debug_string(self) -> str:
        lines = [f"Using AsyncHyperBand: num_stopped={self._num_stopped}"]
        for bracket in range(len(self._rungs)):
            rungs = " | ".join(f"Iter {m:.3f}: {c}" for m, c in self.cutoffs(bracket))
            lines.append(f"Bracket: {rungs}")
        return "\n".join(lines)

    def save_state(self) -> dict[str, Any]:
        state = super().save_state()
        state.update(
            rungs=[[[m, dict(r)] for m, r in rungs] for rungs in self._rungs],
            trial_bracket=dict(self._trial_bracket),
            num_stopped=self._num_stopped,
            rng=rng_to_json(self._rng),
        )
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        super().restore_state(state)
        self._rungs = [[(float(m), dict(r)) for m, r in rungs] for rungs in state["rungs"]]
        self._trial_bracket = {k: int(v) for k, v in state["trial_bracket"].items()}
        self._num_stopped = int(state["num_stopped"])
        self._rng = rng_from_json(state["rng"])


ASHAScheduler = AsyncHyperBandScheduler
