"""The driver's side of a trial scheduler (``TuneConfig(scheduler=...)``): the hooks called
at the right moments, the trial the scheduler picks next, and its state saved beside the
journal so a restored sweep makes the same decisions.

No scheduler (or ``FIFOScheduler``) keeps today's behaviour: trials in order, several steps
per call. Any other scheduler sees every result: one step per call, as in Ray Tune.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tune_ckpt.schedulers import (
    FIFOScheduler,
    SchedulerAction,
    SchedulerDecision,
    TrialScheduler,
    TrialsView,
)
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)

STATE_FILE = "scheduler_state.json"
"""The scheduler's ``save_state()``, rewritten whole after each journal flush."""


class Scheduling:
    """One sweep's scheduler and the view of the trials it decides on."""

    def __init__(
        self,
        scheduler: TrialScheduler | None,
        trials: list[Trial],
        experiment: StorageLocation,
        metric: str | None,
        mode: str | None,
    ) -> None:
        self.scheduler = scheduler or FIFOScheduler()
        self.active = not isinstance(self.scheduler, FIFOScheduler)
        """Whether the scheduler decides anything: then every result goes to it."""
        self._view = TrialsView(trials)
        self._experiment = experiment
        self.scheduler.set_search_properties(metric, mode)
        self._written: str | None = None

    @property
    def name(self) -> str:
        return type(self.scheduler).__name__

    def add(self, trials: list[Trial]) -> None:
        """New trials joined (not trials restored from the journal: the restored state
        already knows them)."""
        for trial in trials:
            self.scheduler.on_trial_add(self._view, trial)
        self.scheduler.pop_actions()

    def result(self, trial: Trial, result: dict[str, Any]) -> tuple[SchedulerDecision, list]:
        """The scheduler's decision on ``trial``'s new result, and what it asks of other
        trials."""
        decision = self.scheduler.on_trial_result(self._view, trial, result)
        return SchedulerDecision(decision), self.scheduler.pop_actions()

    def completed(self, trial: Trial) -> list[SchedulerAction]:
        self.scheduler.on_trial_complete(self._view, trial, dict(trial.last_result))
        return self.scheduler.pop_actions()

    def errored(self, trial: Trial) -> list[SchedulerAction]:
        self.scheduler.on_trial_error(self._view, trial)
        return self.scheduler.pop_actions()

    def removed(self, trial: Trial) -> list[SchedulerAction]:
        self.scheduler.on_trial_remove(self._view, trial)
        return self.scheduler.pop_actions()

    def next_trial(self, running: set[str]) -> tuple[Trial | None, list[SchedulerAction]]:
        """The PENDING or PAUSED trial to start next, as the scheduler chooses (None while
        it wants none to start), and what it asks of trials meanwhile (synchronous PBT
        perturbs the population here)."""
        trial = self.scheduler.choose_trial_to_run(self._view)
        actions = self.scheduler.pop_actions()
        if trial is None or trial.trial_id in running:
            return None, actions
        if trial.status not in (TrialStatus.PENDING, TrialStatus.PAUSED):
            return None, actions
        return trial, actions

    def save_state(self) -> None:
        """Write the scheduler's state when it changed (a no-op for FIFO)."""
        if not self.active:
            return
        data = json.dumps(self.scheduler.save_state(), sort_keys=True)
        if data != self._written:
            self._experiment.write_bytes(STATE_FILE, data.encode())
            self._written = data


def restore_state(scheduler: TrialScheduler, experiment: StorageLocation) -> bool:
    """Load the saved state into ``scheduler``; False when the experiment has none."""
    if not experiment.exists(STATE_FILE):
        return False
    scheduler.restore_state(json.loads(experiment.read_bytes(STATE_FILE)))
    return True
