"""``LoggerCallback``: the base class of loggers (Ray Tune's), a :class:`Callback` whose
trial hooks are routed to ``log_trial_*`` methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tune_ckpt.callback import Callback

if TYPE_CHECKING:
    from tune_ckpt.trial import Trial


class LoggerCallback(Callback):
    """Override ``log_trial_start``, ``log_trial_restore``, ``log_trial_save``,
    ``log_trial_result`` and ``log_trial_end``; the driver calls them through the
    callback hooks:

    ==================== =====================================
    hook                 calls
    ==================== =====================================
    on_trial_start       ``log_trial_start(trial)``
    on_trial_restore     ``log_trial_restore(trial)``
    on_trial_save        ``log_trial_save(trial)``
    on_trial_result      ``log_trial_result(iteration, trial, result)``
    on_trial_complete    ``log_trial_end(trial, failed=False)``
    on_trial_error       ``log_trial_end(trial, failed=True)``
    ==================== =====================================

    Write files into ``trial.local_path``: the trial's folder on local storage; on object
    storage a folder on the driver's disk, uploaded into the trial's folder when the trial
    ends and when the sweep ends.
    """

    def log_trial_start(self, trial: Trial) -> None:
        """The trial's actor started (again after a failure, a move or a pause)."""

    def log_trial_restore(self, trial: Trial) -> None:
        """The trial loaded a checkpoint."""

    def log_trial_save(self, trial: Trial) -> None:
        """A checkpoint of the trial is committed."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        """The trial reported ``result`` (``iteration``: the driver loop's step)."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """The trial ended: ``failed`` when it errored past its failure budget."""

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_start(trial)

    def on_trial_restore(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_restore(trial)

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.log_trial_save(trial)

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_end(trial, failed=True)
