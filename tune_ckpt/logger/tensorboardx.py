"""``TBXLoggerCallback``: each trial's results as TensorBoard event files in its trial folder,
so ``tensorboard --logdir <experiment>`` shows the sweep, one run per trial (Ray Tune's
logger of the same name; needs the optional ``tensorboard`` extra, tensorboardX)."""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tune_ckpt import result as keys
from tune_ckpt.logger.base import LoggerCallback
from tune_ckpt.metrics import flatten

if TYPE_CHECKING:
    from tune_ckpt.trial import Trial

logger = logging.getLogger(__name__)

TAG_PREFIX = "ray/tune/"
"""Ray Tune's tags, so dashboards and scripts reading them work on either."""

_NOT_LOGGED = frozenset(
    {"config", keys.PID, keys.TIMESTAMP, keys.TIME_TOTAL_S, keys.TRAINING_ITERATION}
)
"""Result fields that make no useful curve (the step already is the iteration)."""

_EVENT_FILE_PREFIX = "events.out.tfevents."


def _step(result: Mapping[str, Any]) -> int:
    """The x axis: ``timesteps_total`` when the trainable reports it, else the iteration."""
    return int(result.get("timesteps_total") or result.get(keys.TRAINING_ITERATION) or 0)


def _scalar(value: Any) -> float | None:
    """A number TensorBoard can plot (bools and NaN are not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _hparam(value: Any) -> str | bool | int | float | None:
    """A config value the HParams dashboard takes (numpy scalars as Python ones)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return None
    return value if isinstance(value, str | bool | int | float) else None


class TBXLoggerCallback(LoggerCallback):
    """Writes every trial's results as TensorBoard scalars (nested metrics flattened,
    ``{"val": {"acc": 0.9}}`` as the tag ``ray/tune/val/acc``; non-empty numeric lists as
    histograms) with ``timesteps_total`` or ``training_iteration`` as the step, into the
    trial's folder (``trial.local_path``; on object storage uploaded into the trial folder
    when the trial ends). When a trial ends, its config's plain values and last scalars go
    to TensorBoard's HParams dashboard.

    A trial that runs again after a failure, a move or a pause, or after
    ``Tuner.restore``, writes a new event file that hides the steps it redoes (tensorboardX's
    ``purge_step``), so each step shows once.

    Raises:
        ImportError: tensorboardX is not installed (``pip install "tune_ckpt[tensorboard]"``).
    """

    def __init__(self) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                'TBXLoggerCallback needs tensorboardX: pip install "tune_ckpt[tensorboard]"'
            ) from exc
        self._writer_cls = SummaryWriter
        self._writers: dict[str, Any] = {}  # trial_id -> SummaryWriter
        self._resume_step: dict[str, int] = {}  # trial_id -> the step it (re)starts after
        self._last_scalars: dict[str, dict[str, float]] = {}

    def log_trial_start(self, trial: Trial) -> None:
        self._close(trial.trial_id)
        self._resume_step[trial.trial_id] = _step(trial.last_result)

    def log_trial_restore(self, trial: Trial) -> None:
        # Its results were rolled back to the checkpoint it loaded.
        self._close(trial.trial_id)
        self._resume_step[trial.trial_id] = _step(trial.last_result)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        writer = self._writer(trial)
        step = _step(result)
        scalars: dict[str, float] = {}
        shown = {k: v for k, v in result.items() if k not in _NOT_LOGGED}
        for name, value in flatten(shown).items():
            tag = TAG_PREFIX + name
            number = _scalar(value)
            if number is not None:
                scalars[tag] = number
                writer.add_scalar(tag, number, global_step=step)
            elif _histogram_values(value):
                try:
                    writer.add_histogram(tag, value, global_step=step)
                except (TypeError, ValueError) as exc:
                    logger.debug("not logged as a histogram: %s (%s)", tag, exc)
        self._last_scalars[trial.trial_id] = scalars
        writer.flush()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.get(trial.trial_id)
        scalars = self._last_scalars.get(trial.trial_id)
        if writer is not None and scalars:
            self._write_hparams(writer, trial, scalars)
        self._close(trial.trial_id)
        self._resume_step.pop(trial.trial_id, None)
        self._last_scalars.pop(trial.trial_id, None)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for trial_id in list(self._writers):
            self._close(trial_id)

    # -- writers ---------------------------------------------------------------------------

    def _writer(self, trial: Trial) -> Any:
        writer = self._writers.get(trial.trial_id)
        if writer is not None:
            return writer
        folder = trial.local_path
        if folder is None:
            raise ValueError(f"trial {trial.trial_id} has no local_path: not run by a sweep")
        os.makedirs(folder, exist_ok=True)
        earlier = sum(name.startswith(_EVENT_FILE_PREFIX) for name in os.listdir(folder))
        # Steps after the one it resumes from were written by an earlier run: hidden.
        purge = self._resume_step.get(trial.trial_id, 0) + 1 if earlier else None
        # tensorboardX names a file by the second it was opened and the host: a rerun within
        # the same second would truncate the earlier file. The suffix keeps them apart and in
        # order (TensorBoard reads a run's files sorted by name).
        suffix = f".{earlier + 1:04d}"
        writer = self._writer_cls(folder, purge_step=purge, flush_secs=30, filename_suffix=suffix)
        self._writers[trial.trial_id] = writer
        return writer

    def _close(self, trial_id: str) -> None:
        writer = self._writers.pop(trial_id, None)
        if writer is not None:
            writer.close()

    @staticmethod
    def _write_hparams(writer: Any, trial: Trial, scalars: dict[str, float]) -> None:
        params = {k: _hparam(v) for k, v in flatten(trial.config).items()}
        plain = {k: v for k, v in params.items() if v is not None}
        if not plain:
            return
        from tensorboardX.summary import hparams

        try:
            experiment, start, end = hparams(hparam_dict=plain, metric_dict=scalars)
        except (TypeError, ValueError) as exc:  # values tensorboardX refuses
            logger.warning("trial %s: hyperparameters not logged: %s", trial.trial_id, exc)
            return
        for summary in (experiment, start, end):
            writer.file_writer.add_summary(summary)


def _histogram_values(value: Any) -> bool:
    """A non-empty list or array of numbers."""
    size = getattr(value, "size", None)
    if size is not None and hasattr(value, "dtype"):
        return bool(size) and getattr(value.dtype, "kind", "") in "biuf"
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(_scalar(v) is not None for v in value)
    )
