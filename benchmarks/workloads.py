"""The benchmark workloads, written once against the Ray Tune API names.

Each workload runs in its own process (``python -m benchmarks.run_one NAME FRAMEWORK``) with
``tune`` bound to ``tune_ckpt`` or ``ray.tune``: the same code apart from that import. It
prints one JSON object: its timings and, where asked, the driver's peak memory.

The trainables report their setup, checkpoint writes, restores and crashes to
``benchmarks.timeline``, which does nothing unless ``benchmarks/profile.py`` runs them.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import ray

from benchmarks import timeline

MiB = 1024 * 1024


def framework(name: str) -> ModuleType:
    """``tune_ckpt`` or ``ray.tune``, which expose the same names."""
    if name == "tune_ckpt":
        import tune_ckpt

        return tune_ckpt
    if name == "ray_tune":
        from ray import tune

        return tune
    raise ValueError(f"framework={name!r} is invalid: 'tune_ckpt' or 'ray_tune'")


def _init_ray(**kwargs: Any) -> None:
    kwargs.setdefault("num_cpus", 2)
    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False, **kwargs)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _trainables(tune: ModuleType) -> dict[str, type]:
    """The trainable classes, built on the framework's ``Trainable``."""

    class Tiny(tune.Trainable):  # type: ignore[misc,name-defined]
        """Trivial work, a 16-byte checkpoint; optionally crashes or sleeps."""

        def setup(self, config: dict[str, Any]) -> None:
            timeline.setup_started(self)
            self.i = 0
            self.first_step = True

        def step(self) -> dict[str, Any]:
            self.i += 1
            if self.first_step:
                timeline.event("first step", trial=str(self.trial_id), iteration=self.i)
                self.first_step = False
            crash_at = self.config.get("crash_at")
            if crash_at and self.i == crash_at:
                marker = os.path.join(self.config["marker_dir"], str(self.trial_id))
                if not os.path.exists(marker):
                    open(marker, "w").close()
                    timeline.event("crash (worker exits)", trial=str(self.trial_id))
                    os._exit(1)
            if self.config.get("node_dir"):
                path = os.path.join(self.config["node_dir"], str(self.trial_id))
                with open(path, "w") as f:
                    f.write(f"{ray.get_runtime_context().get_node_id()} {self.i}")
            if self.config.get("sleep"):
                time.sleep(self.config["sleep"])
            return {"i": self.i}

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, "state"), "w") as f:
                f.write(f"{self.i:016d}")

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, "state")) as f:
                self.i = int(f.read())
            timeline.event("load_checkpoint", trial=str(self.trial_id), iteration=self.i)
            self.first_step = True

    class Large(tune.Trainable):  # type: ignore[misc,name-defined]
        """A checkpoint of ``config["mib"]`` MiB of incompressible bytes."""

        def setup(self, config: dict[str, Any]) -> None:
            timeline.setup_started(self)
            self.i = 0
            self.blob = os.urandom(config["mib"] * MiB)
            timeline.event("setup done", trial=str(self.trial_id))

        def step(self) -> dict[str, Any]:
            self.i += 1
            return {"i": self.i}

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            start = time.time()
            with open(os.path.join(checkpoint_dir, "blob.bin"), "wb") as f:
                f.write(self.blob)
            timeline.event("save_checkpoint (trainable writes)", t0=start, trial=str(self.trial_id))

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            start = time.time()
            with open(os.path.join(checkpoint_dir, "blob.bin"), "rb") as f:
                self.blob = f.read()
            timeline.event("load_checkpoint", t0=start, trial=str(self.trial_id))

    return {"Tiny": Tiny, "Large": Large}


def _fit(tune: ModuleType, trainable: Any, space: dict[str, Any], storage: str,
         stop: int, **checkpoint: Any) -> Any:  # fmt: skip
    failure = checkpoint.pop("max_failures", 0)
    return tune.Tuner(
        trainable,
        param_space=space,
        run_config=tune.RunConfig(
            storage_path=storage,
            name="bench",
            verbose=0,
            stop={"training_iteration": stop},
            checkpoint_config=tune.CheckpointConfig(**checkpoint),
            failure_config=tune.FailureConfig(max_failures=failure),
        ),
    ).fit()


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- the five workloads --------------------------------------------------------------------


def bookkeeping(tune: ModuleType, storage: str) -> dict[str, Any]:
    """16 trials x 100 iterations of trivial work, a 16-byte checkpoint every 10, keep 2."""
    _init_ray()
    tiny = _trainables(tune)["Tiny"]
    space = {"x": tune.grid_search(list(range(16)))}
    seconds = _timed(
        lambda: _fit(tune, tiny, space, storage, 100, checkpoint_frequency=10, num_to_keep=2)
    )
    return {"seconds": seconds}


def large_checkpoints(tune: ModuleType, storage: str) -> dict[str, Any]:
    """2 trials x 4 iterations, a 256 MiB checkpoint every 2 iterations."""
    _init_ray()
    large = _trainables(tune)["Large"]
    space = {"mib": 256, "x": tune.grid_search([0, 1])}
    seconds = _timed(lambda: _fit(tune, large, space, storage, 4, checkpoint_frequency=2))
    return {"seconds": seconds}


# Each sweep of crash_recovery runs in a Ray instance of its own, started this long before
# it: Ray starts a worker process per CPU with each instance, and a sweep started right after
# another finds them gone (taken by the first sweep's actors, which exit with it) and waits
# for new ones. In one shared instance the second sweep (the crash run) paid that wait and
# the first did not, so the difference measured the order of the sweeps as well as the
# crashes.
SETTLE_S = 3.0


def crash_recovery(tune: ModuleType, storage: str) -> dict[str, Any]:
    """4 trials x 60 iterations, checkpoint every 10; each trial's worker exits once at 35.
    Reports the clean run, the crash run and the difference. Each sweep runs in a fresh Ray
    instance after ``SETTLE_S`` (``BENCH_SHARED_RAY=1``: both in one instance, without the
    pause, the protocol before 2026-11-30)."""
    shared = os.environ.get("BENCH_SHARED_RAY") == "1"
    tiny = _trainables(tune)["Tiny"]
    markers = tempfile.mkdtemp(prefix="bench_markers_")
    space = {"x": tune.grid_search(list(range(4)))}
    settings = {"checkpoint_frequency": 10, "max_failures": 2}
    clean_dir, crash_dir = os.path.join(storage, "clean"), os.path.join(storage, "crash")
    crash_space = {**space, "crash_at": 35, "marker_dir": markers}
    seconds = []
    for folder, run_space in [(clean_dir, space), (crash_dir, crash_space)]:
        if not ray.is_initialized():
            _init_ray()
            if not shared:
                time.sleep(SETTLE_S)
        seconds.append(
            _timed(functools.partial(_fit, tune, tiny, run_space, folder, 60, **settings))
        )
        if not shared:
            ray.shutdown()
    clean, crashed = seconds
    shutil.rmtree(markers, ignore_errors=True)
    return {"clean_s": clean, "crash_s": crashed, "seconds": crashed - clean}


def node_loss(tune: ModuleType, storage: str) -> dict[str, Any]:
    """3-node cluster (a head without CPUs, two 1-CPU workers), 2 trials x 100 iterations of
    0.1 s, checkpoint every 10; the node running trial 0 is removed at iteration 40 and a
    fresh node added. Reports the time from the removal to the end of the sweep and, as
    ``seconds``, that time less the lost trial's remaining iterations' own time (the
    overhead of the loss)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
    tiny = _trainables(tune)["Tiny"]
    node_dir = tempfile.mkdtemp(prefix="bench_nodes_")
    space = {"x": tune.grid_search([0, 1]), "sleep": 0.1, "node_dir": node_dir}
    outcome: dict[str, Any] = {}

    def sweep() -> None:
        start = time.perf_counter()
        grid = _fit(tune, tiny, space, storage, 100, checkpoint_frequency=10, max_failures=3)
        outcome["total_s"] = time.perf_counter() - start
        outcome["end"] = time.perf_counter()
        outcome["grid"] = grid

    # Ray's Cluster adds nodes only from the main thread, so the sweep runs in another one.
    runner = threading.Thread(target=sweep, daemon=True)
    stop_watching = timeline.watch_nodes()  # only when profiling
    runner.start()
    removed_at, lost = None, ("", 0)
    while removed_at is None and runner.is_alive():
        names = sorted(os.listdir(node_dir))
        if len(names) == 2:
            try:
                with open(os.path.join(node_dir, names[0])) as f:
                    node_id, iteration = f.read().split()
            except (OSError, ValueError):  # caught mid-write: read again
                continue
            if int(iteration) >= 40:
                node = next(n for n in cluster.worker_nodes if n.node_id == node_id)
                removed_at, lost = time.perf_counter(), (names[0], int(iteration))
                timeline.event("node removed", node=node_id, iteration=int(iteration))
                cluster.remove_node(node, allow_graceful=False)
                timeline.event("node remove returned; adding a node")
                cluster.add_node(num_cpus=1)
                timeline.event("node added")
        time.sleep(0.01)
    runner.join()
    stop_watching()
    ray.shutdown()
    cluster.shutdown()
    shutil.rmtree(node_dir, ignore_errors=True)
    if removed_at is None or "end" not in outcome:
        raise RuntimeError("the node was never removed, or the sweep failed")
    after_removal = outcome["end"] - removed_at
    remaining = _remaining_step_time(outcome["grid"], *lost)
    return {
        "total_s": outcome["total_s"],
        "after_removal_s": after_removal,
        "remaining_steps_s": remaining,
        # What the loss cost beyond the work that was left: noticing it, the new actor,
        # the restore, and the steps redone since the last checkpoint.
        "seconds": after_removal - remaining,
    }


def _remaining_step_time(grid: Any, trial_id: str, removed_at_iteration: int) -> float:
    """The own time (``time_this_iter_s``) of the lost trial's iterations after the one it
    had reached at the removal, from its final history (the last report of each iteration:
    Ray Tune keeps the redone ones too)."""
    for result in grid:
        if result.metrics.get("trial_id") != trial_id:
            continue
        frame = result.metrics_dataframe
        rows = frame[frame["training_iteration"] > removed_at_iteration]
        last = rows.drop_duplicates("training_iteration", keep="last")
        return float(last["time_this_iter_s"].sum())
    raise RuntimeError(f"no result for the lost trial {trial_id}")


def scale(tune: ModuleType, storage: str) -> dict[str, Any]:
    """1000 trials x 10 iterations, a checkpoint each iteration, keep 1, 0.1 CPU each."""
    _init_ray()
    tiny = tune.with_resources(_trainables(tune)["Tiny"], {"cpu": 0.1})
    space = {"x": tune.grid_search(list(range(1000)))}
    seconds = _timed(
        lambda: _fit(tune, tiny, space, storage, 10, checkpoint_frequency=1, num_to_keep=1)
    )
    return {"seconds": seconds, "driver_peak_rss_mib": _peak_rss_mib()}


def growth_trials(tune: ModuleType, storage: str, trials: str = "16") -> dict[str, Any]:
    """N trials x 10 iterations, a checkpoint every 2: for the growth plot."""
    _init_ray()
    tiny = _trainables(tune)["Tiny"]
    space = {"x": tune.grid_search(list(range(int(trials))))}
    return {"seconds": _timed(lambda: _fit(tune, tiny, space, storage, 10, checkpoint_frequency=2))}


def growth_mib(tune: ModuleType, storage: str, mib: str = "64") -> dict[str, Any]:
    """2 trials x 2 iterations with an N MiB checkpoint each iteration: for the growth plot."""
    _init_ray()
    large = _trainables(tune)["Large"]
    space = {"mib": int(mib), "x": tune.grid_search([0, 1])}
    return {"seconds": _timed(lambda: _fit(tune, large, space, storage, 2, checkpoint_frequency=1))}


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "bookkeeping": bookkeeping,
    "large_checkpoints": large_checkpoints,
    "crash_recovery": crash_recovery,
    "node_loss": node_loss,
    "scale": scale,
}
"""The five workloads compared against targets (growth_* only feed the plot)."""

EXTRA = {"growth_trials": growth_trials, "growth_mib": growth_mib}

TARGETS = {
    "bookkeeping": 0.2,
    "large_checkpoints": 0.5,
    "crash_recovery": 0.3,
    "node_loss": 0.3,
    "scale": 0.5,
}
"""Upper bounds on the ratio tune_ckpt / Ray Tune of each workload's ``seconds``."""
