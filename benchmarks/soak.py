"""Chaos soak: ``python -m benchmarks.soak --minutes N [--seed S]`` (not run by CI; needs the
``test`` extra for moto and the fault-injecting filesystem of ``tests/``).

A sweep of 16 deterministic trials runs on a local 3-node Ray cluster (a head without CPUs,
two 2-CPU workers) with its experiment on S3 (moto's server on 127.0.0.1) behind
``tests/faultfs.py``, which fails a seeded fraction of the storage calls with transient
errors (throttling, 503, timeouts, reset connections) for the whole sweep. Meanwhile a
seeded chaos loop, every few seconds, either SIGKILLs the worker process of a running
trial, drains a worker node with a deadline (``tune_ckpt.driver.drains``, what Ray's SIGTERM
handler, KubeRay and the spot watcher do) and removes it at the deadline, or removes a
worker node without warning; a fresh node replaces each one removed. Once, at about 40% of
the planned time, it SIGKILLs the driver, waits for its actors to stop, and resumes the
sweep with ``Tuner.restore``.

At the end the same sweep runs again without any fault (steps without the sleep), and every
trial's final metrics and the bytes of its final checkpoint must equal that run's.

Reported, from what the trials themselves logged (every step appends ``node pid iteration``
to a log per trial, every restore its iteration): faults injected by kind, restarts from
scratch while a checkpoint existed (goal 0) and before any existed, iterations redone (work
lost) and their time, and goodput: useful step time over all step time run.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ray

import tune_ckpt as tune

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRIALS = 16
STEP_S = 0.1
FREQUENCY = 25
BLOB_BYTES = 256 * 1024
WORKER_CPUS = 2
TRANSIENT = ("slowdown", "http503", "timeout", "reset")


def _blob(x: int) -> bytes:
    """Checkpoint bytes that depend on the state only."""
    seed = hashlib.sha256(str(x).encode()).digest()
    return (seed * (BLOB_BYTES // len(seed) + 1))[:BLOB_BYTES]


class Soaker(tune.Trainable):
    """A deterministic state (a 64-bit LCG seeded by the trial) and ``BLOB_BYTES`` of
    checkpoint derived from it; every step logged."""

    def setup(self, config: dict[str, Any]) -> None:
        self.cfg = config["trial"]
        self.i = 0
        self.x = self.cfg["seed"]
        self.restored_from = 0

    def step(self) -> dict[str, Any]:
        self.i += 1
        self.x = (self.x * 6364136223846793005 + 1442695040888963407 + self.i) % 2**64
        if self.cfg["sleep"]:
            time.sleep(self.cfg["sleep"])
            node = ray.get_runtime_context().get_node_id()
            with open(os.path.join(self.cfg["log_dir"], self.cfg["name"]), "a") as f:
                f.write(f"{node} {os.getpid()} {self.i} {time.time():.3f}\n")
        return {"x": self.x, "restored_from": self.restored_from}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"i": self.i, "x": self.x}, f)
        with open(os.path.join(checkpoint_dir, "blob.bin"), "wb") as f:
            f.write(_blob(self.x))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            state = json.load(f)
        with open(os.path.join(checkpoint_dir, "blob.bin"), "rb") as f:
            if f.read() != _blob(state["x"]):
                raise ValueError("checkpoint bytes do not match its state")
        self.i, self.x = state["i"], state["x"]
        self.restored_from = self.i


# -- the driver (a subprocess, so it can be SIGKILLed) -------------------------------------


def _filesystem(args: dict[str, Any]) -> Any:
    import pyarrow.fs as pafs

    s3 = pafs.S3FileSystem(endpoint_override=args["endpoint"], scheme="http")
    if args["control"] is None:
        return s3
    from tests.faultfs import FaultHandler

    return pafs.PyFileSystem(FaultHandler(s3, args["control"]))


def _drive(args: dict[str, Any]) -> None:
    ray.init(address=args["address"], configure_logging=False, log_to_driver=False)
    fs = _filesystem(args)
    trials = [
        {"name": f"t{k:02d}", "seed": 1000 + k, "sleep": args["sleep"], "log_dir": args["log_dir"]}
        for k in range(TRIALS)
    ]
    run_config = tune.RunConfig(
        storage_path=args["storage"],
        storage_filesystem=fs,
        name=args["name"],
        verbose=0,
        stop={"training_iteration": args["iterations"]},
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=FREQUENCY, num_to_keep=2, checkpoint_at_end=True
        ),
        failure_config=tune.FailureConfig(max_failures=-1),
    )
    path = f"{args['storage']}/{args['name']}"
    if args["restore"]:
        tuner = tune.Tuner.restore(path, Soaker, run_config=run_config, storage_filesystem=fs)
    else:
        tuner = tune.Tuner(
            Soaker, param_space={"trial": tune.grid_search(trials)}, run_config=run_config
        )
    grid = tuner.fit()
    final = {}
    for result in grid:
        name = result.config["trial"]["name"]
        with result.checkpoint.as_directory() as folder:
            digest = hashlib.sha256()
            for file in sorted(os.listdir(folder)):
                if not file.startswith("."):
                    digest.update(file.encode() + Path(folder, file).read_bytes())
        final[name] = {
            "x": result.metrics["x"],
            "training_iteration": result.metrics["training_iteration"],
            "checkpoint_sha256": digest.hexdigest(),
            "error": None if result.error is None else str(result.error)[:300],
            "num_failures": result.metrics.get("num_failures"),
            "num_preemptions": result.metrics.get("num_preemptions"),
        }
    Path(args["out"]).write_text(json.dumps(final))


def _start_driver(settings: dict[str, Any], **changes: Any) -> subprocess.Popen[bytes]:
    arguments = json.dumps({**settings, **changes})
    return subprocess.Popen([sys.executable, "-m", "benchmarks.soak", "--driver", arguments])


# -- the chaos -----------------------------------------------------------------------------


def _steps(log_dir: str) -> dict[str, list[tuple[str, int, int, float]]]:
    """Each trial's steps in order: (node id, pid, iteration, epoch seconds)."""
    steps: dict[str, list[tuple[str, int, int, float]]] = {}
    for name in sorted(os.listdir(log_dir)):
        rows = []
        for line in Path(log_dir, name).read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:  # a line being written is skipped
                rows.append((parts[0], int(parts[1]), int(parts[2]), float(parts[3])))
        steps[name] = rows
    return steps


class Chaos:
    """The faults, drawn from one seeded generator."""

    def __init__(self, cluster: Any, log_dir: str, seed: int) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self._removals: list[tuple[float, Any]] = []  # (when, node) drained, to remove

    def _running(self) -> list[tuple[str, int]]:
        """(node id, pid) of the trials that stepped in the last 2 s."""
        now = time.time()
        return [
            (rows[-1][0], rows[-1][1])
            for rows in _steps(self.log_dir).values()
            if rows and now - rows[-1][3] < 2.0
        ]

    def _worker(self, node_id: str) -> Any:
        return next((n for n in self.cluster.worker_nodes if n.node_id == node_id), None)

    def strike(self) -> None:
        """One fault, chosen at random among those that apply now."""
        running = self._running()
        if not running:
            return
        kind = self.rng.choices(["kill_worker", "drain", "remove_node"], [5, 3, 2])[0]
        node_id, pid = self.rng.choice(sorted(running))
        node = self._worker(node_id)
        if kind == "kill_worker":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
        elif node is None or any(n is node for _, n in self._removals):
            return
        elif kind == "drain":
            from tune_ckpt.driver import drains

            deadline = time.time() + self.rng.uniform(5.0, 12.0)
            drains.drain_node(node_id, deadline, gcs_address=self.cluster.address)
            self.cluster.add_node(num_cpus=WORKER_CPUS)
            self._removals.append((deadline, node))
        else:
            self.cluster.add_node(num_cpus=WORKER_CPUS)
            self.cluster.remove_node(node, allow_graceful=False)
        self.counts[kind] += 1

    def remove_due(self, everything: bool = False) -> None:
        """Remove the drained nodes whose deadline passed."""
        for entry in list(self._removals):
            if everything or entry[0] <= time.time():
                self._removals.remove(entry)
                self.cluster.remove_node(entry[1], allow_graceful=False)


def _wait_actors_gone(deadline_s: float = 120.0) -> None:
    """Ray stops a dead driver's actors a moment later; until then they may still write."""
    end = time.monotonic() + deadline_s
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources().get("CPU", 0.0):
        if time.monotonic() > end:
            raise RuntimeError("the killed driver's actors did not stop in time")
        time.sleep(0.2)


# -- the report ----------------------------------------------------------------------------


def _analyse(steps: dict[str, list[tuple[str, int, int, float]]]) -> dict[str, Any]:
    """Restarts and redone work, from each trial's own step log."""
    from_scratch_with_checkpoint = from_scratch_before_any = restores = 0
    executed = unique = 0
    for rows in steps.values():
        iterations = [r[2] for r in rows]
        executed += len(iterations)
        unique += len(set(iterations))
        highest = 0
        for previous, current in itertools.pairwise(iterations):
            highest = max(highest, previous)
            if current <= previous:
                restores += 1
                if current == 1 and highest > FREQUENCY:
                    # Step FREQUENCY + 1 runs only after checkpoint FREQUENCY was committed.
                    from_scratch_with_checkpoint += 1
                elif current == 1:
                    from_scratch_before_any += 1
    redone = executed - unique
    return {
        "restarts": restores,
        "restarts_from_scratch_with_checkpoint": from_scratch_with_checkpoint,
        "restarts_from_scratch_before_any_checkpoint": from_scratch_before_any,
        "steps_run": executed,
        "iterations_redone": redone,
        "time_lost_s": round(redone * STEP_S, 1),
        "goodput_steps": round(unique / executed, 4) if executed else None,
    }


def soak(minutes: float, seed: int, fault_fraction: float) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    from tests.faultfs import FaultFS
    from tests.s3server import BUCKET, run_moto

    work = Path(tempfile.mkdtemp(prefix="soak_"))
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_DEDUP_LOGS": "0",
    }
    os.environ.update(env)  # the cluster's nodes and the driver inherit them
    # Each trial gets a quarter of the 4 CPUs; leave a third of the time for the faults.
    iterations = max(2 * FREQUENCY, int(minutes * 60 * (2 / 3) * 2 * WORKER_CPUS / TRIALS / STEP_S))
    moto = run_moto(work / "moto.log")
    server = next(moto)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=WORKER_CPUS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
    faults = FaultFS(server.filesystem(), work / "faults.json")
    faults.set(fault_fraction, seed=seed, kinds=TRANSIENT)
    log_dir = work / "steps"
    log_dir.mkdir()
    settings = {
        "address": cluster.address,
        "endpoint": server.endpoint,
        "storage": f"{BUCKET}/soak",
        "name": "chaos",
        "sleep": STEP_S,
        "log_dir": str(log_dir),
        "iterations": iterations,
        "control": faults.control_path,
        "restore": False,
        "out": str(work / "chaos.json"),
    }
    chaos = Chaos(cluster, str(log_dir), seed)
    started = time.monotonic()
    driver = _start_driver(settings)
    driver_killed = False
    next_strike = started + chaos.rng.uniform(5, 12)
    while driver.poll() is None:
        now = time.monotonic()
        chaos.remove_due()
        if not driver_killed and now - started > 0.4 * minutes * 60:
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            driver_killed = True
            chaos.counts["driver_sigkill"] += 1
            chaos.remove_due(everything=True)
            _wait_actors_gone()
            driver = _start_driver(settings, restore=True)
        elif now >= next_strike:
            chaos.strike()
            next_strike = now + chaos.rng.uniform(5, 12)
        time.sleep(0.2)
    wall = time.monotonic() - started
    chaos.remove_due(everything=True)
    faults.off()
    if driver.returncode != 0:
        raise RuntimeError(f"the chaos driver exited with {driver.returncode}")
    storage_faults = Counter(f["kind"] for f in faults.injected())
    steps = _steps(str(log_dir))
    # The same sweep, no faults, no sleeps: what every trial must end with.
    reference = _start_driver(
        settings, name="reference", sleep=0, control=None, out=str(work / "reference.json")
    )
    if reference.wait() != 0:
        raise RuntimeError("the fault-free reference run failed")
    got = json.loads((work / "chaos.json").read_text())
    want = json.loads((work / "reference.json").read_text())
    keys = ("x", "training_iteration", "checkpoint_sha256")
    mismatched = sorted(
        n for n in want if {k: got[n][k] for k in keys} != {k: want[n][k] for k in keys}
    )
    ray.shutdown()
    cluster.shutdown()
    next(moto, None)  # stops the server
    useful_s = TRIALS * iterations * STEP_S
    return {
        "minutes_planned": minutes,
        "wall_s": round(wall, 1),
        "seed": seed,
        "trials": TRIALS,
        "iterations_per_trial": iterations,
        "faults": {**chaos.counts, "storage": dict(storage_faults)},
        "storage_fault_fraction": fault_fraction,
        **_analyse(steps),
        "goodput_cluster": round(useful_s / (wall * 2 * WORKER_CPUS), 4),
        "trials_errored": sorted(n for n, r in got.items() if r["error"]),
        "failures": sum(r["num_failures"] or 0 for r in got.values()),
        "preemptions": sum(r["num_preemptions"] or 0 for r in got.values()),
        "trials_matching_fault_free_run": TRIALS - len(mismatched),
        "trials_not_matching": mismatched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--storage-fault-fraction", type=float, default=0.02)
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results.soak.jsonl"))
    args = parser.parse_args()
    if args.driver:
        _drive(json.loads(args.driver))
        return
    if args.minutes <= 0:
        parser.error(f"--minutes={args.minutes} is invalid: a number of minutes above 0")
    if not 0 <= args.storage_fault_fraction < 1:
        parser.error(
            f"--storage-fault-fraction={args.storage_fault_fraction} is invalid: 0 <= f < 1"
        )
    figures = soak(args.minutes, args.seed, args.storage_fault_fraction)
    print(json.dumps(figures, indent=2), flush=True)
    with open(args.out, "a") as out:
        out.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), **figures}) + "\n")


if __name__ == "__main__":
    main()
