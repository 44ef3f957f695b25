"""Wall-clock events for ``benchmarks/profile.py``; inert unless ``BENCH_EVENTS`` is set.

When ``BENCH_EVENTS`` names a file, :func:`event` appends one JSON line per event to it
(``t`` is ``time.time()``, so lines from the driver and every Ray worker on this machine
share one clock). The benchmark trainables call it at their setup, checkpoint writes,
restores and crashes; :func:`instrument_driver` and :func:`instrument_worker` wrap a few
functions of tune_ckpt or Ray Tune at run time (nothing in either package is edited) so
their commits, restores and failure handling show as spans (only calls made from Python
after the wrapping count: Ray binds an actor's own methods when it creates the actor, so those
are timed from inside). Without ``BENCH_EVENTS`` every call here returns at once and nothing
is wrapped.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

ENV = "BENCH_EVENTS"

_wrapped: set[str] = set()
_lock = threading.Lock()


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def event(name: str, **fields: Any) -> None:
    """Append one event; a no-op unless ``BENCH_EVENTS`` is set."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = {
        "t": time.time(),
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "event": name,
        **fields,
    }
    data = (json.dumps(line, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)  # one write with O_APPEND: lines from many processes stay whole
    finally:
        os.close(fd)


def process_start_time() -> float:
    """This process's start, as ``time.time()``, from /proc (10 ms resolution)."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[19])  # field 22, starttime, in clock ticks after boot
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A short label from a call's arguments: a relative checkpoint path, a trial id."""
    fields: dict[str, Any] = {}
    for value in args:
        trial = getattr(value, "trial", None) or value
        trial_id = getattr(trial, "trial_id", None)
        if isinstance(trial_id, str):
            fields["trial"] = trial_id
        elif isinstance(value, str) and "checkpoint_" in value:
            fields["path"] = value[-60:]
        elif isinstance(value, BaseException):
            fields["error"] = type(value).__name__
    return fields


def _wrap(module_name: str, attr: str, label: str, instant: bool = False) -> None:
    """Replace ``module.attr`` (``Class.method`` allowed) with a wrapper that records a span
    (start ``t0``, end ``t``) or, with ``instant``, one event at entry. Missing names are
    skipped: the package may have changed under the benchmark."""
    key = f"{module_name}:{attr}"
    with _lock:
        if key in _wrapped:
            return
        _wrapped.add(key)
    try:
        owner: Any = importlib.import_module(module_name)
        *parents, name = attr.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original: Callable[..., Any] = getattr(owner, name)
    except (ImportError, AttributeError):
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fields = _describe(args, kwargs)
        if instant:
            event(label, **fields)
            return original(*args, **kwargs)
        start = time.time()
        returned = None
        try:
            returned = original(*args, **kwargs)
            return returned
        finally:
            if isinstance(returned, bool):
                fields["returned"] = returned
            event(label, t0=start, **fields)

    setattr(owner, name, wrapper)


_TUNE_CKPT_WORKER = [
    ("tune_ckpt.persistence", "CheckpointWriter.save_trainable", "save (whole)"),
    ("tune_ckpt.storage.commit", "CheckpointStore.stage_local", "stage folder"),
    ("tune_ckpt.storage.commit", "CheckpointStore.commit_staged", "commit (hash+fsync+seal)"),
    ("tune_ckpt.storage.local_io", "hash_file", "BLAKE3 hash of a file"),
    ("tune_ckpt.storage.local_io", "fsync_path", "fsync of a file"),
    ("tune_ckpt.storage.commit", "CheckpointStore._seal_local", "seal (manifest, renames)"),
    ("tune_ckpt.storage.commit", "write_synced", "manifest write+fsync"),
    ("tune_ckpt.storage.commit", "fsync_path", "fsync of a folder"),
    ("tune_ckpt.storage.staging", "publish_local", "rename into place"),
    ("tune_ckpt.storage.reading", "verify", "verify (re-hash)"),
]
_RAY_TUNE_WORKER = [
    (
        "ray.train._internal.storage",
        "StorageContext.persist_current_checkpoint",
        "persist (copy to storage)",
    ),
]
_TUNE_CKPT_DRIVER = [
    ("tune_ckpt.tuner", "Tuner.fit", "fit"),
    ("tune_ckpt.driver.loop", "TrialRunner._start_fresh", "driver: new actor requested"),
    ("tune_ckpt.driver.loop", "TrialRunner._on_failure", "driver: failure noticed"),
    ("tune_ckpt.driver.loop", "TrialRunner._restore", "driver: restore sent"),
    ("tune_ckpt.driver.loop", "TrialRunner._on_restored", "driver: restore done"),
    ("tune_ckpt.driver.bookkeeping", "CheckpointBook.record_saved", "driver: checkpoint recorded"),
    ("tune_ckpt.driver.loop", "TrialRunner._finish", "driver: trial finished"),
    ("tune_ckpt.driver.placement", "Placement.avoid", "driver: nodes to avoid"),
]
_RAY_TUNE_DRIVER = [
    ("ray.tune.tuner", "Tuner.fit", "fit"),
    ("ray.tune.execution.tune_controller", "TuneController._schedule_trial_actor",
     "driver: new actor requested"),
    ("ray.tune.execution.tune_controller", "TuneController._actor_started",
     "driver: actor started"),
    ("ray.tune.execution.tune_controller", "TuneController._process_trial_failure",
     "driver: failure noticed"),
    ("ray.tune.execution.tune_controller", "TuneController._schedule_trial_restore",
     "driver: restore sent"),
    ("ray.tune.execution.tune_controller", "TuneController._process_trial_restore",
     "driver: restore done"),
    ("ray.tune.execution.tune_controller", "TuneController._process_trial_save",
     "driver: checkpoint recorded"),
]  # fmt: skip
_INSTANT = {
    "driver: new actor requested",
    "driver: failure noticed",
    "driver: actor started",
}


def _install(table: list[tuple[str, str, str]]) -> None:
    for module_name, attr, label in table:
        _wrap(module_name, attr, label, instant=label in _INSTANT)


def instrument_driver(framework: str) -> None:
    """Wrap the driver-side functions of ``framework`` (``tune_ckpt`` or ``ray_tune``)."""
    if enabled():
        _install(_TUNE_CKPT_DRIVER if framework == "tune_ckpt" else _RAY_TUNE_DRIVER)


def instrument_worker() -> None:
    """Wrap the worker-side checkpoint functions of whichever framework hosts this trial.
    Called from the benchmark trainables' ``setup``, so it runs in each worker process."""
    if not enabled():
        return
    import sys

    if "tune_ckpt.actor" in sys.modules:
        _install(_TUNE_CKPT_WORKER)
    if "ray.tune.trainable.trainable" in sys.modules:
        _install(_RAY_TUNE_WORKER)


def watch_nodes(period: float = 0.1) -> Callable[[], None]:
    """Record each node's joining and its change to dead as Ray's GCS reports them, from a
    thread of the driver, until the returned function is called. Nothing runs unless
    ``BENCH_EVENTS`` is set."""
    stop = threading.Event()
    if not enabled():
        return stop.set

    def watch() -> None:
        import ray

        alive: dict[str, bool] = {}
        while not stop.wait(period):
            try:
                nodes = ray.nodes()
            except Exception:  # Ray is shutting down
                return
            for node in nodes:
                node_id, state = node.get("NodeID"), bool(node.get("Alive"))
                if alive.get(node_id) != state:
                    event("ray: node alive" if state else "ray: node dead", node=node_id)
                    alive[node_id] = state

    threading.Thread(target=watch, name="bench-node-watch", daemon=True).start()
    return stop.set


def setup_started(trainable: Any) -> None:
    """Called first in a benchmark trainable's ``setup``: records when this worker process
    started and where, and wraps the framework's checkpoint functions in it."""
    if not enabled():
        return
    import ray

    event(
        "setup start",
        trial=str(trainable.trial_id),
        process_start=process_start_time(),
        node=ray.get_runtime_context().get_node_id(),
    )
    instrument_worker()
