"""The tune_ckpt exception tree.

::

    TuneCkptError
    ├── StorageError (OSError)          a storage backend failed; names the path and the cause
    │   ├── StorageNotFoundError        bucket, prefix or file missing
    │   ├── StoragePermissionError      access denied, read-only filesystem
    │   ├── StorageFullError            no space left, quota exceeded
    │   └── StorageUnavailableError     transient: unreachable, timeouts, resets, throttling,
    │                                   HTTP 5xx (the only kind retried)
    ├── UnsafePathError (ValueError)    a persisted path that is absolute or climbs with ".."
    ├── CheckpointError
    │   ├── CheckpointNotFoundError     no committed checkpoint at that path
    │   └── CorruptCheckpointError      committed, but files missing, truncated or altered
    ├── TrainableError (TypeError)      a trainable that cannot run (wrong kind, unpicklable, ...)
    ├── TrialError                      a trial failed; carries the worker's traceback (as
    │                                   ``Result.error``, also an instance of the class the
    │                                   trainable raised, see ``trial_error``)
    ├── TuneError                       ``tune_ckpt.run(raise_on_failed_trial=True)``: trials
    │                                   failed (Ray Tune's ``ray.tune.error.TuneError``)
    ├── DrainError                      Ray's private node-drain API refused or failed
    ├── SpotNoticeError                 the cloud's metadata service could not be read
    ├── NodeLostError                   a node running a trial is gone (its raylet stopped
    │                                   answering), noticed before Ray declared it dead
    └── ExperimentError (ValueError)    an experiment cannot be found, read or restored
        ├── ExperimentLockedError       another live driver holds the experiment's lease
        ├── LeaseLostError              a worker's driver no longer holds the lease: no commit
        └── SupersededError             another actor now runs the worker's trial: no commit

Backend errors are translated at the storage boundary (``raise StorageError(...) from exc``)
and never logged and swallowed. ``STORAGE_ERRORS`` is the one tuple callers catch for them.
A StorageError that reaches a caller failed after the retries its location allows (when
``transient``) or is permanent; callers do not retry it again.
"""

from __future__ import annotations

import re


class TuneCkptError(Exception):
    """Base of every error tune_ckpt raises on purpose."""


class StorageError(TuneCkptError, OSError):
    """A storage backend operation failed.

    Attributes:
        path: the storage path (URI or filesystem path) the operation touched.
        cause: a short description of what went wrong, taken from the backend.
        transient: whether trying again later may succeed (class-level).
    """

    transient: bool = False

    def __init__(self, path: str, cause: str) -> None:
        self.path = path
        self.cause = cause
        super().__init__(f"{type(self).__name__}: {path}: {cause}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Errors travel between Ray workers and the driver; keep them picklable.
        return (type(self), (self.path, self.cause))


class StorageNotFoundError(StorageError):
    """The bucket, prefix or file does not exist."""


class StoragePermissionError(StorageError):
    """The backend denied access to the path."""


class StorageFullError(StorageError):
    """The backend has no room left: no space on the device, a quota, HTTP 507."""


class StorageUnavailableError(StorageError):
    """A transient failure: the backend could not be reached (connection refused or reset,
    timeout), throttled the request or answered with a server error (HTTP 5xx)."""

    transient = True


STORAGE_ERRORS: tuple[type[StorageError], ...] = (
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageFullError,
    StorageUnavailableError,
)
"""Every error a storage backend failure becomes. Catch ``STORAGE_ERRORS`` (or its first
member, the base class) to handle all of them."""


class UnsafePathError(TuneCkptError, ValueError):
    """A relative storage path was absolute, empty or tried to climb out with ``..``."""


class CheckpointError(TuneCkptError):
    """Base of checkpoint-level errors."""


class CheckpointNotFoundError(CheckpointError):
    """No committed checkpoint (no manifest) at the given path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no committed checkpoint at {path!r} (its manifest is missing)")

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.path,))


class CorruptCheckpointError(CheckpointError):
    """A committed checkpoint whose files no longer match its manifest.

    Attributes:
        path: where the checkpoint lives.
        problems: one line per file that is missing, has the wrong size or the wrong hash.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"checkpoint {path!r} is corrupt: " + "; ".join(self.problems))

    def __reduce__(self) -> tuple[type, tuple[str, list[str]]]:
        return (type(self), (self.path, self.problems))


class TrainableError(TuneCkptError, TypeError):
    """A trainable that cannot be run: wrong kind, not picklable, broken API contract."""


class TrialError(TuneCkptError):
    """A trial failed. ``str()`` holds the worker's traceback."""


class DrainError(TuneCkptError):
    """A node drain could not be requested or read: Ray's private drain API refused the
    request, failed, or no longer has the shape ``driver/drains`` expects (a Ray upgrade)."""


class SpotNoticeError(TuneCkptError):
    """The cloud's instance metadata service did not answer, or not with a spot notice."""


class NodeLostError(TuneCkptError):
    """The node a trial ran on is gone: its raylet refuses connections or stopped answering
    (``driver/node_watch``). The trial restarts elsewhere as after any failure."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(f"node {node_id} is lost: its raylet stopped answering")

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.node_id,))


class TuneError(TuneCkptError):
    """Ray Tune's ``TuneError``: raised by ``tune_ckpt.run`` when trials did not finish."""


class ExperimentError(TuneCkptError, ValueError):
    """An experiment path holds no experiment, or cannot be restored as asked."""


class ExperimentLockedError(ExperimentError):
    """Another driver, alive (its lease's heartbeat is recent), runs the experiment."""


class LeaseLostError(ExperimentError):
    """The lease of the driver that started this worker is gone (the driver died and a new
    one took the experiment over): the worker must not commit."""


class SupersededError(ExperimentError):
    """The driver started another actor for this worker's trial (it lost touch with this
    one: a lost node, a drain) and fenced this one off: the worker must not commit."""


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s|:$|$)")


def _raised_class_name(traceback_text: str) -> str | None:
    """The class named by the exception line of a traceback's last frame: the first line at
    column 0 after the last ``  File ...`` line (``module.Qualname: message``, builtins and
    ``__main__`` without a module, as Python prints them)."""
    lines = traceback_text.splitlines()
    last_frame = max((i for i, line in enumerate(lines) if line.startswith("  File ")), default=-1)
    for line in lines[last_frame + 1 :]:
        if line[:1].isspace() or not line:
            continue
        match = _EXCEPTION_LINE.match(line)
        return match.group(1) if match else None
    return None


def _resolve_class(name: str) -> type[BaseException] | None:
    """The exception class ``name`` names, when it is importable here."""
    import builtins
    import importlib
    import sys

    candidates: list[tuple[object, list[str]]] = []
    if "." not in name:
        candidates = [(builtins, [name]), (sys.modules.get("__main__"), [name])]
    else:
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                module = importlib.import_module(".".join(parts[:cut]))
            except Exception:  # not a module (or one that fails to import): try shorter
                continue
            candidates = [(module, parts[cut:])]
            break
    for owner, attrs in candidates:
        value: object = owner
        for attr in attrs:
            value = getattr(value, attr, None)
        if isinstance(value, type) and issubclass(value, BaseException):
            return value
    return None


_TRIAL_ERROR_CLASSES: dict[type[BaseException], type[TrialError]] = {}


def trial_error(traceback_text: str) -> TrialError:
    """A trial's error from its traceback: a TrialError that is also an instance of the
    class the trainable raised when that class is importable in this process (so
    ``isinstance(result.error, ZeroDivisionError)`` holds), else a plain TrialError. Its
    ``str()`` is the traceback. Picklable."""
    name = _raised_class_name(traceback_text)
    raised = _resolve_class(name) if name else None
    if raised is None or issubclass(raised, TrialError) or not issubclass(raised, Exception):
        return TrialError(traceback_text)
    cls = _TRIAL_ERROR_CLASSES.get(raised)
    if cls is None:
        try:
            cls = type(
                raised.__name__,
                (TrialError, raised),
                {"__str__": _traceback_str, "__reduce__": _reduce, "__module__": __name__},
            )
        except TypeError:  # a class that cannot be combined (layout, final): keep it plain
            return TrialError(traceback_text)
        _TRIAL_ERROR_CLASSES[raised] = cls
    error = cls.__new__(cls)
    BaseException.__init__(error, traceback_text)
    return error


def _traceback_str(self: BaseException) -> str:
    return str(self.args[0]) if self.args else ""


def _reduce(self: BaseException) -> tuple[object, tuple[str]]:
    return (trial_error, (str(self.args[0]),))
