"""The function API: ``report`` and ``get_checkpoint``, called inside a function trainable.

``report(metrics, checkpoint=...)`` takes the checkpoint in one of two forms:

* a ``Checkpoint``: saved now, whatever the schedule (Ray Tune's behaviour);
* a zero-argument callable returning a ``Checkpoint``: called only when the runner needs a
  checkpoint after this report: every ``checkpoint_frequency`` iterations, at the end of the
  trial with ``checkpoint_at_end``, when the result asks with ``should_checkpoint``, or before
  a preemption. The function is paused inside ``report()`` while the callable runs, so the
  state it captures is the state of this iteration.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

from tune_ckpt.checkpoint import Checkpoint

CheckpointArg: TypeAlias = Checkpoint | Callable[[], Checkpoint] | None


class SessionClosed(BaseException):
    """Raised inside a paused function when its trial stops, to unwind it.

    A BaseException so that a user's ``except Exception`` does not swallow it.
    """


class Session:
    """The link between a running function and its FunctionTrainable."""

    def __init__(
        self,
        on_report: Callable[[dict[str, Any], CheckpointArg], None],
        resume: threading.Semaphore,
    ) -> None:
        self._on_report = on_report
        self._resume = resume
        self.checkpoint: Checkpoint | None = None
        self.closed = False

    def report(self, metrics: dict[str, Any], checkpoint: CheckpointArg = None) -> None:
        if not isinstance(metrics, dict):
            raise TypeError(f"report(metrics={metrics!r}) is invalid: metrics must be a dict")
        if checkpoint is not None and not (
            isinstance(checkpoint, Checkpoint) or callable(checkpoint)
        ):
            raise TypeError(
                f"report(checkpoint={checkpoint!r}) is invalid: a tune_ckpt.Checkpoint, a "
                "callable returning one, or None"
            )
        self._on_report(dict(metrics), checkpoint)
        self._resume.acquire()
        if self.closed:
            raise SessionClosed()
        if isinstance(checkpoint, Checkpoint):
            self.checkpoint = checkpoint


_local = threading.local()


@contextlib.contextmanager
def _activate(session: Session) -> Iterator[None]:
    _local.session = session
    try:
        yield
    finally:
        _local.session = None


def _current() -> Session:
    session = getattr(_local, "session", None)
    if session is None:
        raise RuntimeError(
            "report()/get_checkpoint() can only be called inside a function trainable run by "
            "tune_ckpt (Tuner.fit)"
        )
    return session


def report(metrics: dict[str, Any], checkpoint: CheckpointArg = None) -> None:
    """Report one iteration's metrics, optionally with a checkpoint or a checkpoint callable
    (see the module docs). Blocks until the runner asks for the next iteration."""
    _current().report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint to resume from: the one restored after a failure or restore, or the
    last one this function reported; None on a fresh start."""
    return _current().checkpoint
