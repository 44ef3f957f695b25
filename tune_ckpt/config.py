"""User-facing configuration: frozen dataclasses validated at construction.

Every invalid value raises ``ValueError`` (or ``TypeError`` for a wrong type) naming the field,
the value and what is allowed, so a mistake surfaces where it was made, not in a worker.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tune_ckpt.callback import Callback, checked_callbacks
from tune_ckpt.config_checks import finite_number, seconds_from_env
from tune_ckpt.config_checks import invalid as _bad
from tune_ckpt.config_checks import is_int as _is_int
from tune_ckpt.spot_config import METADATA_URL, SpotConfig, SpotProvider

__all__ = [
    "METADATA_URL",
    "CheckpointConfig",
    "FailureConfig",
    "RunConfig",
    "SpotConfig",
    "SpotProvider",
    "StopCallable",
    "StorageRetry",
    "TransferMode",
    "TuneConfig",
    "Verbosity",
    "finite_number",
    "seconds_from_env",
    "stop_value_reached",
]

StopCallable = Callable[[str, dict[str, Any]], bool]
TransferMode = Literal["auto", "shared", "object_store"]


class Verbosity(enum.IntEnum):
    """Ray Tune's verbosity levels, accepted by ``RunConfig(verbose=...)``: V0 shows
    warnings and errors only, V1 the live table and the summary, V2 and V3 also every
    result and checkpoint (tune_ckpt has three levels; V3 is shown as V2)."""

    V0_MINIMAL = 0
    V1_EXPERIMENT = 1
    V2_TRIAL_NORM = 2
    V3_TRIAL_DETAILS = 3


def stop_value_reached(value: Any, threshold: float | bool) -> bool:
    """Whether a result's ``value`` meets a stop dict's ``threshold``: True stops when the
    value is true (``stop={"done": True}``), a number when ``value >= threshold``."""
    if threshold is True:
        return bool(value)
    return bool(value >= threshold)


@dataclass(frozen=True)
class StorageRetry:
    """How long transient storage errors are retried before they count as failures.

    Transient errors (throttling, HTTP 5xx, timeouts, connection resets, an endpoint that
    is down) are retried with exponential backoff and full jitter: the wait before retry
    ``n`` (from 1) is uniform in ``[0, min(max_s, initial_s * 2 ** (n - 1))]``. Retries stop
    once ``max_elapsed_s`` have passed since the first attempt; the last error then raises.
    Permanent errors (permission denied, no such bucket, no space left) raise at once.

    Args:
        max_elapsed_s: total time budget for one storage operation, retries included;
            ``0`` makes a single attempt.
        initial_s: the upper bound of the first wait.
        max_s: the largest upper bound any wait reaches.
    """

    max_elapsed_s: float = 300.0
    initial_s: float = 0.2
    max_s: float = 20.0

    def __post_init__(self) -> None:
        for name in ("max_elapsed_s", "initial_s", "max_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise _bad(name, value, "a number of seconds")
        if self.max_elapsed_s < 0:
            raise _bad("max_elapsed_s", self.max_elapsed_s, "a number >= 0 (0: no retries)")
        if self.initial_s <= 0:
            raise _bad("initial_s", self.initial_s, "a number > 0")
        if self.max_s < self.initial_s:
            raise _bad("max_s", self.max_s, f"a number >= initial_s ({self.initial_s!r})")

    def backoff_bound(self, retry: int) -> float:
        """The upper bound of the wait before retry number ``retry`` (1 for the first)."""
        exponent = min(max(retry - 1, 0), 64)  # 2**64 already exceeds any sensible max_s
        return float(min(self.max_s, self.initial_s * 2.0**exponent))

    def backoff(self, retry: int, uniform: float) -> float:
        """The wait before retry number ``retry``, given ``uniform`` drawn from [0, 1)."""
        return uniform * self.backoff_bound(retry)


@dataclass(frozen=True)
class CheckpointConfig:
    """Which checkpoints are taken and which are kept.

    Args:
        num_to_keep: keep at most this many checkpoints (the best by
            ``checkpoint_score_attribute``, else the most recent) plus always the latest one.
            ``None`` keeps all.
        checkpoint_score_attribute: metric ranking checkpoints; nested names use ``/``
            (``"val/acc"`` reads ``metrics["val"]["acc"]``).
        checkpoint_score_order: ``"max"`` or ``"min"``.
        checkpoint_frequency: checkpoint every N training iterations (0 disables).
        checkpoint_at_end: checkpoint when a trial stops, unless that iteration already was.
    """

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None and (not _is_int(self.num_to_keep) or self.num_to_keep < 1):
            raise _bad("num_to_keep", self.num_to_keep, "an int >= 1, or None to keep all")
        if self.checkpoint_score_order not in ("max", "min"):
            raise _bad("checkpoint_score_order", self.checkpoint_score_order, '"max" or "min"')
        if not _is_int(self.checkpoint_frequency) or self.checkpoint_frequency < 0:
            raise _bad(
                "checkpoint_frequency", self.checkpoint_frequency, "an int >= 0 (0 disables)"
            )
        if self.checkpoint_at_end is not None and not isinstance(self.checkpoint_at_end, bool):
            raise _bad("checkpoint_at_end", self.checkpoint_at_end, "True, False or None")
        attr = self.checkpoint_score_attribute
        if attr is not None and (not isinstance(attr, str) or not attr.strip("/")):
            raise _bad("checkpoint_score_attribute", attr, "a non-empty metric name, or None")


@dataclass(frozen=True)
class FailureConfig:
    """How trial failures are handled.

    Args:
        max_failures: restarts allowed per trial after failures (from the latest checkpoint);
            ``-1`` means unlimited. Preemptions are not counted against it.
        fail_fast: ``True`` stops the whole sweep at the first trial error; ``"raise"`` also
            re-raises that error from ``fit()``. Only valid with ``max_failures=0``.
        node_silence_s: how long the raylet of a node running trials may leave the driver's
            probes unanswered before the node counts as lost and its trials restart
            elsewhere from their latest checkpoints. Raise it where the network drops out
            for seconds at a time (each restart redoes the steps since the checkpoint);
            ``None`` leaves silent nodes to Ray's own health checks (about 15 s). A raylet
            that refuses connections, or a node Ray lists as dead, is lost at once either way.
    """

    max_failures: int = 0
    fail_fast: bool | str = False
    node_silence_s: float | None = 3.0

    def __post_init__(self) -> None:
        if not _is_int(self.max_failures) or self.max_failures < -1:
            raise _bad("max_failures", self.max_failures, "an int >= 0, or -1 for unlimited")
        if not (isinstance(self.fail_fast, bool) or self.fail_fast == "raise"):
            raise _bad("fail_fast", self.fail_fast, 'True, False or "raise"')
        if self.node_silence_s is not None:
            finite_number("node_silence_s", self.node_silence_s, 0, True,
                          what="None, or a number of seconds")  # fmt: skip
        if self.fail_fast and self.max_failures != 0:
            raise ValueError(
                f"fail_fast={self.fail_fast!r} cannot be combined with "
                f"max_failures={self.max_failures!r}: fail_fast needs max_failures=0"
            )


@dataclass(frozen=True)
class RunConfig:
    """Where an experiment is stored and how its trials run.

    Args:
        name: experiment folder name under ``storage_path``; default derived from the
            trainable's name and the start time.
        storage_path: a local path, ``file://``, ``s3://bucket/prefix`` (``?endpoint_override=``
            and other pyarrow S3 options may follow), ``gs://``, ... Default
            ``~/tune_ckpt_results``.
        storage_filesystem: any ``pyarrow.fs.FileSystem``; ``storage_path`` is then a path
            inside it.
        stop: a dict of metric thresholds (stop when ``result[k] >= v``; a value of True
            stops when ``result[k]`` is true, e.g. ``{"done": True}``), a callable
            ``(trial_id, result) -> bool``, or ``None`` to leave stopping to the trainable.
        checkpoint_config: see :class:`CheckpointConfig`.
        failure_config: see :class:`FailureConfig`.
        verbose: 0 only warnings and errors (through logging); 1 a live table of the trials
            on a terminal, plain lines elsewhere, and a summary; 2 also every result and
            checkpoint (see :mod:`tune_ckpt.progress`). Ray Tune's values are accepted too:
            ``False``/``True`` (0/1) and :class:`Verbosity` (``V3_TRIAL_DETAILS`` is 2 here).
        checkpoint_transfer: ``"auto"`` detects whether workers see the storage;
            ``"shared"`` makes workers persist their own checkpoints; ``"object_store"`` sends
            checkpoint bytes through Ray's object store to the driver, which persists them.
        storage_retry: how long transient storage errors are retried, on the driver and in
            workers; see :class:`StorageRetry`.
        spot: watch every node's spot-interruption notice and drain the node before the
            cloud stops it (see :class:`SpotConfig`); None (the default) watches nothing.
        callbacks: :class:`tune_ckpt.Callback` instances the driver calls at each event of
            the sweep (e.g. ``tune_ckpt.logger.TBXLoggerCallback()``); kept as a tuple, not
            saved with the experiment.
    """

    name: str | None = None
    storage_path: str | os.PathLike[str] | None = None
    storage_filesystem: Any = None
    stop: Mapping[str, Any] | StopCallable | None = None
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    failure_config: FailureConfig = field(default_factory=FailureConfig)
    verbose: int = 1
    checkpoint_transfer: TransferMode = "auto"
    storage_retry: StorageRetry = field(default_factory=StorageRetry)
    spot: SpotConfig | None = None
    callbacks: Sequence[Callback] | None = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "callbacks", checked_callbacks(self.callbacks))
        # None means "the default" for the nested configs, as in Ray.
        if self.storage_retry is None:
            object.__setattr__(self, "storage_retry", StorageRetry())
        if self.spot is not None and not isinstance(self.spot, SpotConfig):
            raise TypeError(f"spot={self.spot!r} is invalid: a tune_ckpt.SpotConfig or None")
        if not isinstance(self.storage_retry, StorageRetry):
            raise TypeError(
                f"storage_retry={self.storage_retry!r} is invalid: a tune_ckpt.StorageRetry or None"
            )
        if self.checkpoint_config is None:
            object.__setattr__(self, "checkpoint_config", CheckpointConfig())
        if self.failure_config is None:
            object.__setattr__(self, "failure_config", FailureConfig())
        if not isinstance(self.checkpoint_config, CheckpointConfig):
            raise TypeError(
                f"checkpoint_config={self.checkpoint_config!r} is invalid: "
                "a tune_ckpt.CheckpointConfig or None"
            )
        if not isinstance(self.failure_config, FailureConfig):
            raise TypeError(
                f"failure_config={self.failure_config!r} is invalid: "
                "a tune_ckpt.FailureConfig or None"
            )
        if self.name is not None and (
            not isinstance(self.name, str)
            or not self.name
            or "/" in self.name
            or "\\" in self.name
            or self.name in (".", "..")
        ):
            raise _bad("name", self.name, "a non-empty folder name without '/' or '..'")
        if self.storage_path is not None and not isinstance(self.storage_path, str | os.PathLike):
            raise _bad("storage_path", self.storage_path, "a path or URI string")
        if self.storage_filesystem is not None:
            import pyarrow.fs

            if not isinstance(self.storage_filesystem, pyarrow.fs.FileSystem):
                raise _bad(
                    "storage_filesystem",
                    self.storage_filesystem,
                    "a pyarrow.fs.FileSystem (wrap fsspec ones in "
                    "pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)))",
                )
        if self.stop is not None and not (isinstance(self.stop, Mapping) or callable(self.stop)):
            raise _bad("stop", self.stop, "a dict of metric thresholds, a callable or None")
        if isinstance(self.stop, Mapping):
            for key, value in self.stop.items():
                if not isinstance(key, str) or value is False or not isinstance(value, int | float):
                    raise _bad(
                        f"stop[{key!r}]",
                        value,
                        "a number (the metric's threshold) or True (stop when the result's "
                        "value is true)",
                    )
        if not isinstance(self.verbose, int) or self.verbose not in (0, 1, 2, 3):
            raise _bad("verbose", self.verbose, "0, 1, 2, 3, a tune_ckpt.Verbosity or a bool")
        # Stored as tune_ckpt's level: False/True are 0/1 and V3 shows what V2 shows.
        object.__setattr__(self, "verbose", min(int(self.verbose), 2))
        if self.checkpoint_transfer not in ("auto", "shared", "object_store"):
            allowed = '"auto", "shared" or "object_store"'
            raise _bad("checkpoint_transfer", self.checkpoint_transfer, allowed)


@dataclass(frozen=True)
class TuneConfig:
    """How many trials run and how results are ranked.

    Args:
        num_samples: how many times the search space is sampled (grids repeat each time).
        metric, mode: the default for ``ResultGrid.get_best_result``; ``mode`` is
            ``"min"`` or ``"max"`` and needs ``metric``.
        max_concurrent_trials: at most this many trials run at once (``None``: as many as
            the cluster's resources allow).
        reuse_actors: what a finished trial's actor does for the next trial with the same
            resources. ``None`` (default): its worker process runs the next trial in a fresh
            trainable instance, saving a process start per trial. ``True``: as Ray Tune, the
            same instance is switched with ``reset_config`` (a fresh instance if that returns
            False). ``False``: every trial gets a new process.
        scheduler: a ``tune_ckpt.schedulers.TrialScheduler`` (``ASHAScheduler``,
            ``HyperBandScheduler``, ``MedianStoppingRule``, your own subclass) deciding after
            every result whether a trial continues, pauses (a checkpoint, then its resources
            go back) or stops; None runs every trial to its end, in order.
        search_alg: a ``tune_ckpt.search.Searcher`` (``OptunaSearch``,
            ``BasicVariantGenerator``, ``ConcurrencyLimiter``, your own subclass) suggesting
            each trial's config when the driver has room for it, and hearing every result;
            ``num_samples`` trials in all (the basic generator: repeats of the grid). None
            creates every trial from the ``param_space`` up front. Kept with the experiment
            (with its state), so ``Tuner.restore`` continues its suggestions.
        trial_name_creator: ``fn(trial) -> str``, the trial's name (``get_trial_name()``,
            the display); default: the name of its folder. Called once, when the trial is
            created, with a :class:`~tune_ckpt.trial.Trial` (``trial_id``, ``config``,
            ``trainable_name``, ``experiment_tag``).
        trial_dirname_creator: ``fn(trial) -> str``, the name of the trial's folder under
            the experiment: one path segment (no ``/``, not ``.``/``..``), unique across
            the trials; default ``<trainable>_<trial_id>``. Called once, when the trial is
            created.

    The two creators are not persisted with the experiment (the journal records None for
    them): names and folders are made at creation and stored with each trial, so
    ``Tuner.restore`` needs neither.
    """

    num_samples: int = 1
    metric: str | None = None
    mode: str | None = None
    max_concurrent_trials: int | None = None
    reuse_actors: bool | None = None
    scheduler: Any = None
    search_alg: Any = None
    trial_name_creator: Callable[[Any], str] | None = None
    trial_dirname_creator: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        scheduler = self.scheduler
        hooks = ("on_trial_result", "choose_trial_to_run", "save_state", "restore_state")
        if scheduler is not None and not all(callable(getattr(scheduler, h, None)) for h in hooks):
            raise _bad("scheduler", scheduler, "a tune_ckpt.schedulers.TrialScheduler or None")
        if self.search_alg is not None:
            from tune_ckpt.search.searcher import Searcher  # pure; only when one is given

            if not isinstance(self.search_alg, Searcher):
                raise _bad("search_alg", self.search_alg, "a tune_ckpt.search.Searcher or None")
        if not _is_int(self.num_samples) or self.num_samples < 1:
            raise _bad("num_samples", self.num_samples, "an int >= 1")
        if self.mode not in (None, "min", "max"):
            raise _bad("mode", self.mode, '"min", "max" or None')
        if self.mode is not None and self.metric is None:
            raise ValueError(f"mode={self.mode!r} needs a metric: set TuneConfig(metric=...)")
        if self.metric is not None and not isinstance(self.metric, str):
            raise _bad("metric", self.metric, "a metric name (str) or None")
        mct = self.max_concurrent_trials
        if mct is not None and (not _is_int(mct) or mct < 1):
            raise _bad("max_concurrent_trials", mct, "an int >= 1, or None")
        if self.reuse_actors is not None and not isinstance(self.reuse_actors, bool):
            raise _bad("reuse_actors", self.reuse_actors, "True, False or None")
        for name in ("trial_name_creator", "trial_dirname_creator"):
            creator = getattr(self, name)
            if creator is not None and not callable(creator):
                raise TypeError(
                    f"{name}={creator!r} is invalid: a function fn(trial) -> str, or None"
                )
