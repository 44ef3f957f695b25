"""``Callback``: code of yours that the driver runs at each event of a sweep, with Ray Tune's
hook names and arguments, passed as ``RunConfig(callbacks=[...])``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tune_ckpt.checkpoint import Checkpoint
    from tune_ckpt.trial import Trial


class Callback:
    """Hooks the driver calls during ``Tuner.fit()``; override the ones you need.

    Every hook is called in the driver process, one callback after the other in the order of
    ``RunConfig(callbacks=[...])``, with keyword arguments (so ``**info`` keeps a callback
    working when a later version passes more). ``iteration`` counts the driver loop's steps
    (not a trial's training iteration), ``trials`` is the list of every trial of the sweep
    and ``trial`` a :class:`tune_ckpt.trial.Trial` (``trial_id``, ``config``, ``status``,
    ``last_result``, ``name``, ``local_path``, ``path``, ...). Treat both as read-only.

    The order, for one trial::

        setup                                  once, before the first trial starts
        on_trial_start                         its actor started (again after a retry,
                                               a move or a pause)
          on_trial_restore                     it loaded a checkpoint (after a failure,
                                               a move, a pause, or on Tuner.restore)
          on_trial_result                      each new result, before a checkpoint
                                               saved with it
          on_checkpoint, then on_trial_save    a checkpoint of it is committed to storage
          on_trial_recover                     it failed (or lost its actor to a
                                               preemption) and will run again: back to
                                               on_trial_start
        on_trial_complete | on_trial_error     it ended: finished or stopped | failed past
                                               FailureConfig(max_failures)
        on_experiment_end                      once, after every trial has concluded and
                                               the actors are stopped (also when the sweep
                                               ends with an error or Ctrl-C)

    ``on_step_begin`` and ``on_step_end`` frame each step of the driver loop (one wait for
    whatever trial answers first, at most about a second).

    Unlike Ray Tune, an exception raised by a hook does not end the sweep: it is logged
    (ERROR, with the traceback, naming the callback's class and the hook; later failures of
    the same hook are counted and summed up at the end). Callbacks are not saved with the
    experiment: ``Tuner.restore`` uses those of the ``run_config`` it is given (none when
    it is given none).
    """

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Once, before the first trial starts: the ``RunConfig(stop=...)``, the
        ``TuneConfig(num_samples=...)`` and the number of trials of the sweep."""

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """At the start of each step of the driver loop."""

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """At the end of each step of the driver loop (``iteration`` already counts it)."""

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """``trial``'s actor started (before it restores a checkpoint, if it has one)."""

    def on_trial_restore(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """``trial`` loaded its latest verified checkpoint."""

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """A checkpoint of ``trial`` is committed (after :meth:`on_checkpoint`)."""

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        """``trial`` reported ``result``: a copy, shared by the callbacks of this call (a
        change made here is seen by the later callbacks, not by the sweep or its files),
        except ``result["should_checkpoint"] = True``, which, as in Ray Tune, checkpoints
        the trial at this result."""

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """``trial`` ended without error: it finished, a stop criterion or a scheduler
        stopped it."""

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """``trial`` failed or lost its actor and will run again (from its latest
        checkpoint, if it has one)."""

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """``trial`` failed and will not run again (``trial.error`` holds the traceback)."""

    def on_checkpoint(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        checkpoint: Checkpoint,
        **info: Any,
    ) -> None:
        """A checkpoint of ``trial`` is committed: ``checkpoint`` is it, on storage."""

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Once, after every trial has concluded (see the class docs)."""


def checked_callbacks(value: Any) -> tuple[Callback, ...]:
    """``RunConfig(callbacks=...)`` as a tuple, or a ``TypeError`` naming the bad item."""
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"callbacks={value!r} is invalid: a list of tune_ckpt.Callback or None")
    for index, item in enumerate(value):
        if isinstance(item, Callback):
            continue
        hint = (
            " (an instance is needed, not the class: add ())"
            if isinstance(item, type) and issubclass(item, Callback)
            else ""
        )
        raise TypeError(
            f"callbacks[{index}]={item!r} is invalid: an instance of a tune_ckpt.Callback "
            f"subclass (e.g. tune_ckpt.logger.TBXLoggerCallback){hint}"
        )
    return tuple(value)
