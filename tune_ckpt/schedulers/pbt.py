"""Population based training: decisions and actions, Ray Tune's algorithm.

At each result past ``burn_in_period`` and ``perturbation_interval`` (in ``time_attr``)
since its last perturbation, a trial's score is recorded and the population (live trials
with a score) is ranked. The top ``quantile_fraction`` (at most half) are asked for a
checkpoint (:class:`SaveCheckpoint`); a trial in the bottom one clones a random top trial:
an :class:`Exploit` action carries the donor's checkpoint record and the explored config
(see :mod:`tune_ckpt.schedulers.pbt_explore`), and the trial's decision is NOOP. Otherwise
the trial continues, or pauses when other trials wait for resources (time sharing).

``synch=True``: every trial pauses at the perturbation point (a checkpoint). Once every
live trial is paused there with that checkpoint committed, all are perturbed at once (when
the driver next asks :meth:`choose_trial_to_run`), and the next point is ``max(point +
interval, latest trial time)``. Ray perturbs on the last trial's result instead, while
pause checkpoints may still be in flight; waiting for them makes every donor's checkpoint
known at the decision, so the decision's exploits are journaled together, and a sweep
restored after a driver crash makes the same decisions as one without it (the decisions
depend on the trials' scores and the seeded generator only, never on the order results
arrived in).

Departures from Ray: draws come from a seeded ``random.Random`` kept in the saved state;
the donor's checkpoint is its newest record at or after its last perturbation point, and
when it has none an exploit is still made (``donor_checkpoint=None``: the driver checkpoints
the donor first) instead of being skipped; ``quantile_fraction=0`` checkpoints nobody.

State (``save_state``): the base fields plus ``trials`` (``{trial_id: {"last_score",
"last_perturbation_time", "last_train_time", "last_iteration"}}``), ``next_perturbation_sync``,
``num_checkpoints``, ``num_perturbations`` and ``rng``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tune_ckpt.metrics import as_score, lookup
from tune_ckpt.schedulers._rng import rng_from_json, rng_to_json
from tune_ckpt.schedulers.actions import Exploit, SaveCheckpoint
from tune_ckpt.schedulers.base import (
    SchedulerContext,
    SchedulerDecision,
    TrialScheduler,
    check_mode,
)
from tune_ckpt.schedulers.pbt_explore import (
    Mutations,
    check_mutations,
    explore,
    fill_missing,
    policy_record,
)
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)

_WAITING = (TrialStatus.PENDING, TrialStatus.PAUSED)


@dataclass
class _TrialClock:
    """PBT's record of one trial (Ray's ``_PBTTrialState``)."""

    last_score: float | None = None
    last_perturbation_time: float = 0.0
    last_train_time: float = 0.0
    last_iteration: int = 0  # training_iteration at the last perturbation point


class PopulationBasedTraining(TrialScheduler):
    """PBT with Ray Tune's arguments and defaults (see the module docstring).

    Args:
        time_attr: result field that measures progress; must not decrease.
        metric: result field to rank by (``"a/b"`` reads nested results).
        mode: ``"min"`` or ``"max"``.
        perturbation_interval: time between a trial's perturbations.
        burn_in_period: no perturbation before this time.
        hyperparam_mutations: key -> dict (nested), list/tuple, search-space object or
            callable. Keys missing from a trial's config are drawn when it is added.
        quantile_fraction: share of the population in each of the top and bottom
            quantiles, 0 to 0.5.
        resample_probability: chance of drawing a new value instead of perturbing.
        perturbation_factors: factors a continuous value is multiplied by.
        custom_explore_fn: ``f(config) -> config`` applied after the mutations.
        log_config: whether the driver writes ``pbt_global.txt`` and
            ``pbt_policy_<trial>.txt`` (lines in :attr:`Exploit.policy`).
        require_attrs: raise when a result lacks ``time_attr`` or ``metric``; else they
            are ignored.
        synch: synchronous PBT.
        seed: seeds every random choice (donors, explore, initial values).
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: Mutations | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        seed: int | None = None,
    ) -> None:
        name = type(self).__name__
        check_mode(name, mode)
        mutations = dict(hyperparam_mutations or {})
        check_mutations(mutations)
        if not mutations and custom_explore_fn is None:
            raise ValueError(
                f"{name}(hyperparam_mutations={hyperparam_mutations!r}, custom_explore_fn=None)"
                " is invalid: give at least one of them"
            )
        if not 0 <= quantile_fraction <= 0.5:
            raise ValueError(
                f"{name}(quantile_fraction={quantile_fraction!r}) is invalid: from 0 to 0.5"
            )
        if not perturbation_interval > 0:
            raise ValueError(
                f"{name}(perturbation_interval={perturbation_interval!r}) is invalid: must be > 0"
            )
        if burn_in_period < 0:
            raise ValueError(f"{name}(burn_in_period={burn_in_period!r}) is invalid: must be >= 0")
        if not 0 <= resample_probability <= 1:
            raise ValueError(
                f"{name}(resample_probability={resample_probability!r}) is invalid: from 0 to 1"
            )
        if not perturbation_factors:
            raise ValueError(f"{name}(perturbation_factors=()) is invalid: give at least one")
        self._time_attr = time_attr
        self._metric = metric
        self._mode = mode
        self._interval = perturbation_interval
        self._burn_in = burn_in_period
        self._mutations = mutations
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._factors = tuple(perturbation_factors)
        self._custom_explore_fn = custom_explore_fn
        self.log_config = log_config
        self._require_attrs = require_attrs
        self._synch = synch
        self._clocks: dict[str, _TrialClock] = {}
        self._next_sync = max(perturbation_interval, burn_in_period)
        self._num_checkpoints = 0
        self._num_perturbations = 0
        self._rng = random.Random(seed)

    def on_trial_add(self, runner: SchedulerContext, trial: Trial) -> None:
        """Registers the trial and draws missing mutation keys into ``trial.config``
        (the driver writes the trial's params after this call)."""
        self._require_metric_and_mode()
        self._clocks.setdefault(trial.trial_id, _TrialClock())
        fill_missing(trial.config, self._mutations, self._rng)

    def _read(self, result: dict[str, Any]) -> tuple[float, float] | None:
        time = lookup(result, self._time_attr)
        value = as_score(lookup(result, self._metric or ""))
        for field, missing in ((self._time_attr, time is None), (self._metric, value is None)):
            if missing and self._require_attrs:
                raise RuntimeError(
                    f"PopulationBasedTraining: result has no numeric {field!r} "
                    f"(keys: {sorted(result)}); report it, or pass require_attrs=False"
                )
        if time is None or value is None:
            return None
        return float(time), self.metric_op * value

    def on_trial_result(
        self, runner: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> SchedulerDecision:
        observed = self._read(result)
        if observed is None:
            return SchedulerDecision.CONTINUE
        time, score = observed
        clock = self._clocks.setdefault(trial.trial_id, _TrialClock())
        if time < self._burn_in or time - clock.last_perturbation_time < self._interval:
            return SchedulerDecision.CONTINUE
        clock.last_score = score
        clock.last_train_time = time
        clock.last_iteration = int(result.get("training_iteration", 0))
        self._record_point(trial, time, score)
        trials = list(runner.get_trials())
        if not self._synch:
            clock.last_perturbation_time = time
            lower, upper = self._quantiles(trials)
            others_wait = any(t.status in _WAITING for t in trials if t.trial_id != trial.trial_id)
            exploited = self._checkpoint_or_exploit(trial, trials, lower, upper, others_wait)
            if exploited:
                return SchedulerDecision.NOOP
            return SchedulerDecision.PAUSE if others_wait else SchedulerDecision.CONTINUE
        return self._synch_result(trial, trials, time)

    def _synch_result(self, trial: Trial, trials: list[Trial], time: float) -> SchedulerDecision:
        """Every trial pauses at the point; :meth:`_synchronize` perturbs them together."""
        return SchedulerDecision.PAUSE

    def _synchronize(self, trials: Sequence[Trial]) -> None:
        """Perturb the whole population once every live trial is paused at the point with
        its checkpoint there committed (top first, so no exploit names a checkpoint before
        its donor is ranked)."""
        live = [t for t in trials if not t.is_finished]
        if not live or not all(self._ready_at_point(t) for t in live):
            return
        lower, upper = self._quantiles(trials)
        ranked = {t.trial_id for t in lower + upper}
        middle = [t for t in live if t.trial_id not in ranked]
        time = max(self._clock(t).last_train_time for t in live)
        for t in upper + middle + lower:
            self._clock(t).last_perturbation_time = time
            self._checkpoint_or_exploit(t, trials, lower, upper, True)
        latest = max((self._clock(t).last_train_time for t in trials), default=0.0)
        self._next_sync = max(self._next_sync + self._interval, latest)

    def _ready_at_point(self, trial: Trial) -> bool:
        return trial.status == TrialStatus.PAUSED and self._at_point(trial)

    def _at_point(self, trial: Trial) -> bool:
        """Reached the point with a checkpoint there. A trial restored after a driver crash
        from a checkpoint before the point its clock says it reached is not: it runs
        there again."""
        clock = self._clock(trial)
        latest = trial.latest_checkpoint
        return (
            clock.last_train_time >= self._next_sync
            and latest is not None
            and latest.iteration >= clock.last_iteration
        )

    def _clock(self, trial: Trial) -> _TrialClock:
        return self._clocks.setdefault(trial.trial_id, _TrialClock())

    def _quantiles(self, trials: Sequence[Trial]) -> tuple[list[Trial], list[Trial]]:
        """(bottom, top) of the live trials with a score, ranked worst first."""
        by_id = {t.trial_id: t for t in trials}
        scored = [
            by_id[trial_id]
            for trial_id, clock in self._clocks.items()
            if clock.last_score is not None
            and trial_id in by_id
            and not by_id[trial_id].is_finished
        ]
        scored.sort(key=lambda t: self._clocks[t.trial_id].last_score or 0.0)
        if len(scored) <= 1:
            return [], []
        size = math.ceil(len(scored) * self._quantile_fraction)
        if size > len(scored) / 2:
            size = len(scored) // 2
        if size == 0:
            return [], []
        return scored[:size], scored[-size:]

    def _checkpoint_or_exploit(
        self,
        trial: Trial,
        trials: Sequence[Trial],
        lower: list[Trial],
        upper: list[Trial],
        pause: bool,
    ) -> bool:
        """Ask a top trial for a checkpoint; make a bottom trial exploit. True if it did."""
        if any(t.trial_id == trial.trial_id for t in upper):
            if trial.status != TrialStatus.PAUSED:  # a paused trial has its pause checkpoint
                self._emit(SaveCheckpoint(trial.trial_id))
            self._num_checkpoints += 1
        if not any(t.trial_id == trial.trial_id for t in lower):
            return False
        donor = self._rng.choice(upper)
        donor_clock = self._clocks[donor.trial_id]
        latest = donor.latest_checkpoint
        checkpoint = (
            latest
            if latest is not None and latest.iteration >= donor_clock.last_iteration
            else None
        )
        new_config, operations = self._explore_config(trial, donor)
        policy = policy_record(
            trial.trial_id,
            donor.trial_id,
            trial.iteration,
            donor.iteration,
            donor.config,
            new_config,
        )
        logger.info(
            "[PopulationBasedTraining] [Exploit] Cloning trial %s (score = %f) into trial %s",
            donor.trial_id,
            donor_clock.last_score,
            trial.trial_id,
        )
        self._emit(
            Exploit(
                trial_id=trial.trial_id,
                donor_id=donor.trial_id,
                new_config=new_config,
                donor_checkpoint=checkpoint,
                pause=pause,
                operations=operations,
                policy=policy,
            )
        )
        self._num_perturbations += 1
        clock = self._clocks[trial.trial_id]
        clock.last_perturbation_time = donor_clock.last_perturbation_time
        clock.last_train_time = donor_clock.last_train_time
        return True

    def _record_point(self, trial: Trial, time: float, score: float) -> None:
        """Hook: ``trial`` reached a perturbation point at ``time`` with ``score`` (higher
        is better). PB2 records it as data for its model."""

    def _explore_config(self, trial: Trial, donor: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hook: the config ``trial`` continues with after cloning ``donor``, and what was
        done to each key. PBT perturbs or resamples (``pbt_explore.explore``)."""
        return explore(
            donor.config,
            self._mutations,
            self._resample_probability,
            self._factors,
            self._custom_explore_fn,
            self._rng,
        )

    def choose_trial_to_run(self, runner: SchedulerContext) -> Trial | None:
        """The waiting trial that has trained least (``time_attr``); under ``synch`` only
        trials not yet at the next perturbation point with a checkpoint there, after
        perturbing the population if it is all paused at the point (the actions come with
        this call)."""
        if self._synch:
            self._synchronize(runner.get_trials())
        candidates = [
            t
            for t in runner.get_trials()
            if t.status in _WAITING and not (self._synch and self._at_point(t))
        ]
        candidates.sort(key=lambda t: self._clock(t).last_train_time)
        return candidates[0] if candidates else None

    def debug_string(self) -> str:
        return (
            f"PopulationBasedTraining: {self._num_checkpoints} checkpoints, "
            f"{self._num_perturbations} perturbs"
        )

    def save_state(self) -> dict[str, Any]:
        state = super().save_state()
        state.update(
            trials={t: asdict(c) for t, c in self._clocks.items()},
            next_perturbation_sync=self._next_sync,
            num_checkpoints=self._num_checkpoints,
            num_perturbations=self._num_perturbations,
            rng=rng_to_json(self._rng),
        )
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        super().restore_state(state)
        self._clocks = {t: _TrialClock(**c) for t, c in state["trials"].items()}
        self._next_sync = float(state["next_perturbation_sync"])
        self._num_checkpoints = int(state["num_checkpoints"])
        self._num_perturbations = int(state["num_perturbations"])
        self._rng = rng_from_json(state["rng"])
