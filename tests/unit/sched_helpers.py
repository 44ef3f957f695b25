"""A minimal driver for scheduler tests: trials, statuses, decisions and StopTrial applied
as the real driver must apply them (see tune_ckpt.schedulers.base)."""

from __future__ import annotations

from typing import Any

from tune_ckpt.schedulers import SchedulerDecision, StopTrial, TrialScheduler, TrialsView
from tune_ckpt.trial import Trial, TrialStatus


def make_trials(count: int, status: TrialStatus = TrialStatus.RUNNING) -> list[Trial]:
    trials = [Trial(trial_id=f"t{i}", config={}, trial_dir=f"t{i}") for i in range(count)]
    for trial in trials:
        if status != TrialStatus.PENDING:
            trial.set_status(TrialStatus.RUNNING)
        if status == TrialStatus.PAUSED:
            trial.set_status(TrialStatus.PAUSED)
    return trials


class MiniDriver:
    """Adds trials to a scheduler and feeds results, applying decisions to statuses."""

    def __init__(self, scheduler: TrialScheduler, trials: list[Trial]) -> None:
        self.scheduler = scheduler
        self.view = TrialsView(trials)
        self.by_id = {t.trial_id: t for t in trials}
        for trial in trials:
            scheduler.on_trial_add(self.view, trial)

    def report(self, trial_id: str, **result: Any) -> SchedulerDecision:
        trial = self.by_id[trial_id]
        if trial.status != TrialStatus.RUNNING:
            trial.set_status(TrialStatus.RUNNING)
        trial.last_result = dict(result)
        decision = self.scheduler.on_trial_result(self.view, trial, result)
        if decision == SchedulerDecision.PAUSE:
            trial.set_status(TrialStatus.PAUSED)
        elif decision == SchedulerDecision.STOP:
            trial.set_status(TrialStatus.TERMINATED)
            self.scheduler.on_trial_complete(self.view, trial, result)
        self.apply_stops()
        return decision

    def apply_stops(self) -> list[str]:
        stopped = []
        for action in self.scheduler.pop_actions():
            assert isinstance(action, StopTrial), action
            trial = self.by_id[action.trial_id]
            trial.set_status(TrialStatus.TERMINATED)
            self.scheduler.on_trial_remove(self.view, trial)
            stopped.append(action.trial_id)
        self.last_stopped = stopped
        return stopped
