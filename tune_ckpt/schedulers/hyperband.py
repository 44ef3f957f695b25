"""Synchronous HyperBand: trials pause at each milestone until their bracket is halved.

Ray Tune's algorithm, step for step so the same inputs give the same promotions:

- ``s_max_1 = round(log(max_t) / log(eta)) + 1`` brackets make a band. Trials fill bracket
  ``s = 0, 1, ...`` of the current band in turn (a bracket with ``r0 = 0`` is skipped), then
  a new band starts. Bracket ``s`` holds ``n0 = ceil(s_max_1 / (s + 1) * eta**s)`` trials,
  whose first milestone is ``r0 = int(max_t * eta**-s)``.
- A trial below its bracket's milestone continues. One that reached it pauses, unless it is
  the last: then the bracket is halved. The best ``ceil(n / eta)`` go on (ties broken by the
  order trials joined, the earlier ones ranked lower), the others stop. The next milestone
  is ``int(min(r * eta, max_t - milestone))`` (Ray's arithmetic: with ``max_t=81, eta=3``
  every bracket but ``s = 0`` ends at 54).
- A bracket with no halvings left is finished once all reached the milestone: all stop
  (unless ``stop_last_trials=False``, when they run on).
- ``choose_trial_to_run``: per band, brackets by completion (least first), the first trial
  that is PENDING or PAUSED and promoted.

Paused trials that are dropped are stopped through :class:`StopTrial` actions.

Departure from Ray: removing a trial (error, stop) re-checks its bracket every time, not
only before the bracket's first halving, so paused trials never wait for a trial that is
gone.

State (``save_state``): the base fields plus ``bands`` (per band, per bracket, the bracket's
fields or None), ``current`` (``[band, position]`` of the bracket being filled or None) and
``num_stopped``.
"""

from __future__ import annotations

import math
from typing import Any

from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.schedulers._hb_bracket import Bracket
from tune_ckpt.schedulers.actions import StopTrial
from tune_ckpt.schedulers.base import (
    SchedulerContext,
    SchedulerDecision,
    TrialScheduler,
    check_mode,
)
from tune_ckpt.trial import Trial, TrialStatus


class HyperBandScheduler(TrialScheduler):
    """HyperBand with Ray Tune's arguments and defaults.

    Args:
        time_attr: result field that measures progress; must not decrease.
        metric: result field to rank by (``"a/b"`` reads nested results).
        mode: ``"min"`` or ``"max"``.
        max_t: the longest a trial runs (see the module docstring for Ray's milestones).
        reduction_factor: ``eta``: each halving keeps ``1/eta`` of a bracket.
        stop_last_trials: stop trials whose bracket is finished; if False they run on.
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        name = type(self).__name__
        check_mode(name, mode)
        if not max_t > 0:
            raise ValueError(f"{name}(max_t={max_t!r}) is invalid: must be > 0")
        if not reduction_factor > 1:
            raise ValueError(
                f"{name}(reduction_factor={reduction_factor!r}) is invalid: must be > 1"
            )
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._max_t = max_t
        self._eta = reduction_factor
        self._stop_last_trials = stop_last_trials
        self._s_max_1 = round(math.log(max_t) / math.log(reduction_factor)) + 1
        self._bands: list[list[Bracket | None]] = [[]]
        self._current: tuple[int, int] | None = None
        self._trial_bracket: dict[str, Bracket] = {}
        self._num_stopped = 0

    # -- bracket layout ----------------------------------------------------------------
    def bracket_size(self, s: int) -> int:
        """``n0``: how many trials bracket ``s`` takes."""
        return math.ceil(self._s_max_1 / (s + 1) * self._eta**s)

    def first_milestone(self, s: int) -> int:
        """``r0``: bracket ``s``'s first milestone."""
        return int(self._max_t * self._eta ** (-s))

    def _new_bracket(self) -> Bracket:
        while True:
            if len(self._bands[-1]) == self._s_max_1:
                self._bands.append([])
            band = self._bands[-1]
            s = len(band)
            if self.first_milestone(s) == 0:
                band.append(None)  # too small a bracket: Ray leaves a hole
                continue
            bracket = Bracket.create(
                self.bracket_size(s), self.first_milestone(s), self._max_t, self._eta, s
            )
            band.append(bracket)
            self._current = (len(self._bands) - 1, len(band) - 1)
            return bracket

    def _current_bracket(self) -> Bracket | None:
        if self._current is None:
            return None
        band, position = self._current
        return self._bands[band][position]

    def on_trial_add(self, runner: SchedulerContext, trial: Trial) -> None:
        self._require_metric_and_mode()
        bracket = self._current_bracket()
        if bracket is None or bracket.filled():
            bracket = self._new_bracket()
        bracket.add_trial(trial.trial_id)
        self._trial_bracket[trial.trial_id] = bracket

    # -- results -------------------------------------------------------------------------
    def on_trial_result(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> SchedulerDecision:
        bracket = self._trial_bracket.get(trial.trial_id)
        time = lookup(result, self._time_attr)
        if bracket is None or time is None:
            return SchedulerDecision.CONTINUE
        if trial.trial_id not in bracket.live:
            return SchedulerDecision.STOP  # dropped by a halving; a result was in flight
        score = as_score(lookup(result, self._metric or ""))
        # A result without the metric ranks last rather than failing the sweep.
        ranked = -math.inf if score is None else self.metric_op * score
        bracket.update(trial.trial_id, float(time), ranked)
        if bracket.continue_trial(trial.trial_id, self._stop_last_trials):
            return SchedulerDecision.CONTINUE
        return self._process_bracket(runner, bracket, trial.trial_id)

    def _process_bracket(
        self, runner: SchedulerContext, bracket: Bracket, current: str | None
    ) -> SchedulerDecision:
        """Halve ``bracket`` if every live trial reached its milestone; the decision for
        ``current`` (the reporting trial), PAUSE while others are still on their way."""
        if not bracket.cur_iter_done():
            return SchedulerDecision.PAUSE
        statuses = {t.trial_id: t.status for t in runner.get_trials()}
        if bracket.finished(self._stop_last_trials):
            for trial_id in list(bracket.live):
                if trial_id != current:
                    self._stop_other(bracket, trial_id)
            return SchedulerDecision.STOP
        decision = SchedulerDecision.PAUSE
        good, bad = bracket.successive_halving(self._max_t, self._stop_last_trials)
        self._num_stopped += len(bad)
        for trial_id in bad:
            if trial_id == current:
                bracket.remove(trial_id)
                decision = SchedulerDecision.STOP
            else:
                self._stop_other(bracket, trial_id)
        for trial_id in good:
            if bracket.continue_trial(trial_id, self._stop_last_trials):
                if trial_id == current:
                    decision = SchedulerDecision.CONTINUE
                elif statuses.get(trial_id) != TrialStatus.PENDING:
                    bracket.to_unpause.add(trial_id)
            elif bracket.finished(self._stop_last_trials):
                if trial_id == current:
                    bracket.remove(trial_id)
                    decision = SchedulerDecision.STOP
                else:
                    self._stop_other(bracket, trial_id)
        return decision

    def _stop_other(self, bracket: Bracket, trial_id: str) -> None:
        bracket.remove(trial_id)
        self._emit(StopTrial(trial_id))

    def on_trial_remove(self, runner: SchedulerContext, trial: Trial) -> None:
        bracket = self._trial_bracket.pop(trial.trial_id, None)
        if bracket is None or trial.trial_id not in bracket.live:
            return
        bracket.remove(trial.trial_id)
        if not bracket.finished(self._stop_last_trials) and bracket.live:
            self._process_bracket(runner, bracket, None)

    def on_trial_complete(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        self.on_trial_remove(runner, trial)

    def on_trial_error(self, runner: SchedulerContext, trial: Trial) -> None:
        self.on_trial_remove(runner, trial)

    def choose_trial_to_run(self, runner: SchedulerContext) -> Trial | None:
        by_id = {t.trial_id: t for t in runner.get_trials()}
        for band in self._bands:
            brackets = [b for b in band if b is not None]
            for bracket in sorted(brackets, key=lambda b: b.completion_percentage()):
                for trial_id in bracket.live:
                    trial = by_id.get(trial_id)
                    if trial is None:
                        continue
                    if trial.status == TrialStatus.PENDING or (
                        trial.status == TrialStatus.PAUSED and trial_id in bracket.to_unpause
                    ):
                        return trial
        return None

    def debug_string(self) -> str:
        count = sum(len(band) for band in self._bands)
        out = f"Using HyperBand: num_stopped={self._num_stopped} total_brackets={count}"
        for index, band in enumerate(self._bands):
            out += f"\nRound #{index}:"
            for bracket in band:
                if bracket is not None:
                    out += f"\n  {bracket.describe(self._stop_last_trials)}"
        return out

    # -- crash recovery ------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        state = super().save_state()
        state.update(
            bands=[[None if b is None else b.to_json() for b in band] for band in self._bands],
            current=None if self._current is None else list(self._current),
            num_stopped=self._num_stopped,
        )
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        super().restore_state(state)
        self._bands = [
            [None if b is None else Bracket.from_json(b) for b in band] for band in state["bands"]
        ]
        current = state.get("current")
        self._current = None if current is None else (int(current[0]), int(current[1]))
        self._num_stopped = int(state["num_stopped"])
        self._trial_bracket = {
            trial_id: bracket
            for band in self._bands
            for bracket in band
            if bracket is not None
            for trial_id in bracket.all_trials
        }
