"""The class API (``Trainable``) and the one place function trainables are adapted to it.

A ``Trainable`` runs inside a trial's actor. The actor calls :meth:`Trainable.train` for each
iteration and :meth:`Trainable.save` / :meth:`Trainable.restore` for checkpoints; users
override ``setup``, ``step``, ``save_checkpoint``, ``load_checkpoint``, ``cleanup`` and
``reset_config``.
"""

from __future__ import annotations

import datetime
import numbers
import os
import platform
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tune_ckpt import context
from tune_ckpt import result as keys
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.errors import TrainableError
from tune_ckpt.session import CheckpointArg, Session, _activate

RESOURCES_ATTR = "__tune_ckpt_resources__"


@dataclass(frozen=True)
class TrainableState:
    """The bookkeeping a checkpoint must carry so a restored trainable counts on."""

    iteration: int = 0
    time_total_s: float = 0.0


class Trainable:
    """Base class of class trainables.

    Override :meth:`setup`, :meth:`step`, :meth:`save_checkpoint` and
    :meth:`load_checkpoint` (and optionally :meth:`cleanup`, :meth:`reset_config`,
    :meth:`default_resource_request`). ``self.config``, ``self.iteration``,
    ``self.trial_id``, ``self.trial_name``, ``self.trial_resources`` and ``self.logdir``
    (also ``self.trial_dir``, see ``tune_ckpt.get_context().get_trial_dir()``) are available
    in every method, ``setup`` included.
    """

    def __init__(self, config: dict[str, Any] | None = None, trial_id: str = "") -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.trial_id = trial_id
        self._iteration = 0
        self._time_total = 0.0
        self._iterations_since_restore = 0
        self.setup(self.config)

    # -- what users override ---------------------------------------------------------------

    def setup(self, config: dict[str, Any]) -> None:
        """Build the model and state for ``config``. Called once, in the actor."""

    def step(self) -> dict[str, Any]:
        """Run one training iteration and return its metrics."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def save_checkpoint(self, checkpoint_dir: str) -> str | dict[str, Any] | None:
        """Write state into ``checkpoint_dir`` (return None or that path), or return a dict."""
        raise NotImplementedError(f"{type(self).__name__} must implement save_checkpoint()")

    def load_checkpoint(self, checkpoint: str | dict[str, Any]) -> None:
        """Restore state from what :meth:`save_checkpoint` produced: the directory's local
        path (treat it as read-only) or the dict."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_checkpoint()")

    def cleanup(self) -> None:
        """Release resources when the trial stops."""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Switch to ``new_config`` in place for actor reuse; return True if supported."""
        return False

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> dict[str, float] | None:
        """Resources one trial needs, e.g. ``{"cpu": 2, "gpu": 1}``; None for the default
        of one CPU."""
        return None

    # -- the trial it runs (Ray Tune's attributes) ------------------------------------------

    @property
    def trial_name(self) -> str:
        ctx = context.current()
        return context.TuneContext(ctx).get_trial_name() if ctx else self.trial_id

    @property
    def trial_resources(self) -> context.TrialResources:
        ctx = context.current()
        return (
            context.TuneContext(ctx).get_trial_resources()
            if ctx
            else context.TrialResources({"CPU": 1.0})
        )

    @property
    def logdir(self) -> str:
        """A local folder for the trial's files; outside a sweep (a trainable built by
        hand), a temporary folder of its own."""
        ctx = context.current()
        if ctx is not None:
            return context.TuneContext(ctx).get_trial_dir()
        if getattr(self, "_own_logdir", None) is None:
            import tempfile

            self._own_logdir = tempfile.mkdtemp(prefix="tune_ckpt_trainable_")
        return str(self._own_logdir)

    @property
    def trial_dir(self) -> str:
        return self.logdir

    # -- what the actor calls --------------------------------------------------------------

    @property
    def iteration(self) -> int:
        """Training iterations completed (restored ones included)."""
        return self._iteration

    @property
    def training_iteration(self) -> int:
        return self._iteration

    def train(self) -> dict[str, Any]:
        """Run :meth:`step` once and return its metrics with the auto-filled fields."""
        start = time.time()
        metrics = self.step()
        if not isinstance(metrics, dict):
            raise TrainableError(
                f"{type(self).__name__}.step() returned {type(metrics).__name__} "
                f"({metrics!r:.80}); it must return a dict of metrics"
            )
        return self._fill(dict(metrics), time.time() - start)

    def _fill(self, metrics: dict[str, Any], elapsed: float) -> dict[str, Any]:
        self._iteration += 1
        self._iterations_since_restore += 1
        self._time_total += elapsed
        now = time.time()
        metrics.setdefault(keys.DONE, False)
        metrics.update(
            {
                keys.TRAINING_ITERATION: self._iteration,
                keys.TIME_THIS_ITER_S: elapsed,
                keys.TIME_TOTAL_S: self._time_total,
                keys.TIMESTAMP: int(now),
                keys.DATE: datetime.datetime.fromtimestamp(now).strftime("%Y-%m-%d_%H-%M-%S"),
                keys.TRIAL_ID: self.trial_id,
                keys.HOSTNAME: platform.node(),
                keys.NODE_IP: _node_ip(),
                keys.PID: os.getpid(),
                keys.ITERATIONS_SINCE_RESTORE: self._iterations_since_restore,
            }
        )
        return metrics

    def save(self, checkpoint_dir: str) -> Checkpoint | None:
        """Call :meth:`save_checkpoint` into ``checkpoint_dir``. Returns a dict Checkpoint
        when it returned a dict, else None (the files are in ``checkpoint_dir``)."""
        returned = self.save_checkpoint(checkpoint_dir)
        if isinstance(returned, dict):
            return Checkpoint.from_dict(returned)
        if returned is not None and (
            not isinstance(returned, str | os.PathLike)
            or os.path.abspath(os.fspath(returned)) != os.path.abspath(checkpoint_dir)
        ):
            raise TrainableError(
                f"{type(self).__name__}.save_checkpoint({checkpoint_dir!r}) returned "
                f"{returned!r}; it must return None, the directory it was given, or a dict"
            )
        return None

    def restore(self, checkpoint: str | dict[str, Any], state: TrainableState) -> None:
        """Load a checkpoint (local directory or dict) and continue counting from ``state``."""
        self.load_checkpoint(checkpoint)
        self._iteration = state.iteration
        self._time_total = state.time_total_s
        self._iterations_since_restore = 0

    def reset(self, new_config: dict[str, Any], trial_id: str) -> bool:
        """Reuse this trainable for another trial via :meth:`reset_config`."""
        if not self.reset_config(new_config):
            return False
        self.config = dict(new_config)
        self.trial_id = trial_id
        self._iteration = 0
        self._time_total = 0.0
        self._iterations_since_restore = 0
        return True

    def state(self) -> TrainableState:
        return TrainableState(self._iteration, self._time_total)

    def stop(self) -> None:
        self.cleanup()


def _node_ip() -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # outside a Ray worker (unit use): no node address to report
        return "127.0.0.1"


# -- function trainables --------------------------------------------------------------------


@dataclass
class _Finished:
    """The function returned ``output``."""

    output: Any = None


def _returned_metrics(output: Any) -> dict[str, Any] | None:
    """What a function's return value reports, as in Ray Tune: nothing for a falsy value,
    a dict as the last result, a number as ``_metric``."""
    if not output:
        return None
    if isinstance(output, dict):
        return dict(output)
    if isinstance(output, numbers.Number):
        return {keys.DEFAULT_METRIC: output}
    raise TrainableError(
        f"the function trainable returned {output!r:.80}; it may return nothing, a dict of "
        "metrics (its last result) or a number (reported as _metric)"
    )


@dataclass
class _Raised:
    error: BaseException
    formatted: str


class FunctionTrainable(Trainable):
    """Runs a function trainable ``fn(config)`` in a thread, one ``report()`` per step.

    ``report()`` hands its metrics to :meth:`step` and blocks until the next ``step()`` call,
    so between steps the function is paused at a known point: that is when the runner may ask
    for a checkpoint, and a checkpoint callable passed to ``report()`` sees consistent state.
    """

    _fn: Callable[[dict[str, Any]], Any]

    def setup(self, config: dict[str, Any]) -> None:
        self._reports: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._resume = threading.Semaphore(0)
        self._thread: threading.Thread | None = None
        self._session = Session(self._on_report, self._resume)
        self._pending_checkpoint: CheckpointArg = None
        self.finished = False
        self._returned_result = False

    def _run(self) -> None:
        try:
            with _activate(self._session):
                output = self._fn(self.config)
        except BaseException as exc:  # handed to step() to fail the trial with its traceback
            self._reports.put(_Raised(exc, traceback.format_exc()))
            return
        self._reports.put(_Finished(output))

    def _on_report(self, metrics: dict[str, Any], checkpoint: CheckpointArg) -> None:
        self._reports.put((metrics, checkpoint))

    def step(self) -> dict[str, Any]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tune_ckpt-fn", daemon=True)
            self._thread.start()
        else:
            self._resume.release()
        item = self._reports.get()
        if isinstance(item, _Raised):
            raise item.error
        if isinstance(item, _Finished):
            self.finished = True
            # Keep the last report's checkpoint (or callable): the function returned right
            # after it, so it is what checkpoint_at_end saves.
            returned = _returned_metrics(item.output)
            self._returned_result = returned is not None
            return {keys.DONE: True} if returned is None else returned
        metrics, checkpoint = item
        self._pending_checkpoint = checkpoint
        return dict(metrics)

    def train(self) -> dict[str, Any]:
        start = time.time()
        metrics = self.step()
        if self.finished:
            if self._returned_result:
                # What it returned is one more result, the last (Ray Tune's behaviour).
                metrics = self._fill(metrics, time.time() - start)
                metrics[keys.DONE] = True
                return metrics
            # The function returned nothing: no new iteration, only the end of the trial.
            metrics.update({keys.TRAINING_ITERATION: self._iteration, keys.DONE: True})
            return metrics
        return self._fill(metrics, time.time() - start)

    @property
    def reported_checkpoint(self) -> Checkpoint | None:
        """The checkpoint the last ``report()`` passed eagerly (a Checkpoint, not a
        callable): it is always saved."""
        arg = self._pending_checkpoint
        return arg if isinstance(arg, Checkpoint) else None

    @property
    def can_checkpoint(self) -> bool:
        """True when the last report passed a checkpoint or a checkpoint callable."""
        return self._pending_checkpoint is not None

    def take_checkpoint(self) -> Checkpoint | None:
        """The checkpoint for the current (paused) state: the one reported, or the
        callable's product. None when the function gave neither."""
        arg = self._pending_checkpoint
        if arg is None or isinstance(arg, Checkpoint):
            return arg
        produced = arg()
        if not isinstance(produced, Checkpoint):
            raise TrainableError(
                f"the checkpoint callable passed to report() returned {produced!r}; "
                "it must return a tune_ckpt.Checkpoint"
            )
        return produced

    def restore_checkpoint(self, checkpoint: Checkpoint, state: TrainableState) -> None:
        """Make ``checkpoint`` what ``get_checkpoint()`` returns when the function starts."""
        if self._thread is not None:
            raise TrainableError("a function trainable can only be restored before it starts")
        self._session.checkpoint = checkpoint
        self._iteration = state.iteration
        self._time_total = state.time_total_s
        self._iterations_since_restore = 0

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        if self._thread is not None and not self.finished:
            return False
        self.setup(dict(new_config))
        return True

    def cleanup(self) -> None:
        # A paused function thread is a daemon; it ends with the actor process.
        self._session.closed = True
        self._resume.release()


def wrap_function(fn: Callable[[dict[str, Any]], Any]) -> type[FunctionTrainable]:
    """A FunctionTrainable subclass that runs ``fn``, named after it."""
    name = getattr(fn, "__name__", "function_trainable")
    cls = type(name, (FunctionTrainable,), {"_fn": staticmethod(fn)})
    resources = getattr(fn, RESOURCES_ATTR, None)
    if resources is not None:
        setattr(cls, RESOURCES_ATTR, resources)
    return cls


def as_trainable_class(trainable: Any) -> type[Trainable]:
    """The Trainable class for a trainable given by the user (class or function)."""
    if isinstance(trainable, type):
        if issubclass(trainable, Trainable):
            return trainable
        raise TrainableError(
            f"trainable={trainable.__name__!r} is a class but not a tune_ckpt.Trainable "
            "subclass; subclass tune_ckpt.Trainable or pass a function fn(config)"
        )
    if callable(trainable):
        return wrap_function(trainable)
    raise TrainableError(
        f"trainable={trainable!r} is invalid: a function fn(config) or a tune_ckpt.Trainable "
        "subclass"
    )


def with_resources(trainable: Any, resources: dict[str, float]) -> Any:
    """Attach per-trial resources (``{"cpu": 2, "gpu": 1, "memory": ..., "<custom>": n}``) to
    a trainable class or function, returning a new one."""
    if not isinstance(resources, dict) or not resources:
        raise ValueError(f"resources={resources!r} is invalid: a non-empty dict")
    for key, value in resources.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"resources[{key!r}]={value!r} is invalid: a number >= 0")
    if isinstance(trainable, type):
        return type(trainable.__name__, (trainable,), {RESOURCES_ATTR: dict(resources)})
    if callable(trainable):
        import functools

        @functools.wraps(trainable)
        def wrapper(config: dict[str, Any], **objects: Any) -> Any:
            return trainable(config, **objects)  # objects: from with_parameters

        setattr(wrapper, RESOURCES_ATTR, dict(resources))
        return wrapper
    raise TrainableError(f"with_resources(trainable={trainable!r}) needs a class or function")


def resource_request(cls: type[Trainable], config: dict[str, Any]) -> dict[str, float]:
    """Resources of one trial: ``with_resources``, else ``default_resource_request``, else
    one CPU. Keys are lower-case (``cpu``, ``gpu``, ``memory``, custom names)."""
    request = getattr(cls, RESOURCES_ATTR, None) or cls.default_resource_request(config)
    if request is None:
        return {"cpu": 1.0}
    return {str(k).lower() if str(k).lower() in ("cpu", "gpu") else str(k): float(v)
            for k, v in request.items()}  # fmt: skip
