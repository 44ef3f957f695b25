"""The example sweep the compose job runs: checkpoints on S3, a worker killed once, a restore.

A toy trainable (pure Python, nothing downloaded) minimises (x - 3)^2 by gradient descent, one
trial per learning rate. Every trial checkpoints every 2 iterations and at the end. One trial's
worker process kills itself (``os._exit``) part-way through its first run, like a crashed or
OOM-killed worker; a marker object written next to the experiment first makes that happen once,
on whichever node the trial runs after its restart. tune_ckpt restarts the trial in a new actor
(``FailureConfig(max_failures=2)``) from its latest checkpoint, not from scratch.

After the sweep the script checks what it promised and exits non-zero otherwise: every trial
finished its iterations without error, the killed trial failed once and resumed from a
checkpoint, and every trial's checkpoints are committed on the storage (a manifest in each
``checkpoint_NNNNNN`` folder) and verify against their manifests.

Settings come from the command line, each defaulting to an environment variable:

  --storage-path  TUNE_CKPT_STORAGE_PATH  s3://bucket/prefix (gs://..., or a local path); required
  --name          TUNE_CKPT_EXPERIMENT    experiment folder; default docker-example-<UTC time>.
                                          An existing experiment of that name is resumed.
  --address       RAY_HEAD_ADDRESS        the cluster's GCS address host:port (default: the
                                          cluster of this machine, Ray's "auto")
  --iterations    EXAMPLE_ITERATIONS      iterations per trial (default 12)
  --step-seconds  EXAMPLE_STEP_SECONDS    time one iteration takes (default 0.25)
  --min-cpus      EXAMPLE_MIN_CPUS        wait until the cluster offers this many CPUs (default 2)
  --wait-seconds  EXAMPLE_WAIT_SECONDS    ...for at most this long (default 120)

The S3 endpoint and credentials are the usual AWS variables (AWS_ENDPOINT_URL for MinIO and
other S3-compatible stores, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION). The
workers write checkpoints themselves, so every node of the cluster needs them, not only this
driver. Ray's token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH) must be set too.

Run: python docker/example_sweep.py --storage-path s3://tune-ckpt/sweeps
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import pyarrow.fs as pafs
import ray

import tune_ckpt as tune
from tune_ckpt.storage import MANIFEST_NAME, CheckpointStore, StorageLocation

LEARNING_RATES = [0.05, 0.1, 0.2, 0.4]
CRASH_LR = 0.1  # the trial whose worker process is killed
CRASH_MARKER = "worker-killed-once"
TARGET = 3.0
STATE_FILE = "state.json"


class Quadratic(tune.Trainable):
    """Gradient descent on (x - TARGET)^2; the state is x, saved as JSON."""

    def setup(self, config: dict) -> None:
        self.x = 0.0
        self.restored_from = 0  # the iteration of the checkpoint this actor started from

    def step(self) -> dict:
        config = self.config
        if config["lr"] == config["crash_lr"] and self.iteration + 1 == config["crash_at"]:
            marker = StorageLocation.resolve(config["crash_marker"])
            if not marker.exists(""):
                marker.write_bytes("", f"trial {self.trial_id}\n".encode())
                print(
                    f"trial {self.trial_id}: killing this worker process (pid {os.getpid()}) "
                    f"at iteration {self.iteration + 1}",
                    flush=True,
                )
                os._exit(1)  # a real crash: the worker process dies without any cleanup
        time.sleep(config["step_seconds"])
        self.x -= config["lr"] * 2.0 * (self.x - TARGET)
        return {
            "loss": (self.x - TARGET) ** 2,
            "x": self.x,
            "restored_from": self.restored_from,
            "node_ip": ray.util.get_node_ip_address(),
        }

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, STATE_FILE), "w") as f:
            json.dump({"x": self.x, "iteration": self.iteration}, f)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, STATE_FILE)) as f:
            state = json.load(f)
        self.x = state["x"]
        self.restored_from = state["iteration"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    now = datetime.datetime.now(datetime.timezone.utc)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage-path", default=env("TUNE_CKPT_STORAGE_PATH"))
    parser.add_argument(
        "--name", default=env("TUNE_CKPT_EXPERIMENT") or f"docker-example-{now:%Y%m%d-%H%M%S}"
    )
    parser.add_argument("--address", default=env("RAY_HEAD_ADDRESS") or "auto")
    parser.add_argument("--iterations", type=int, default=int(env("EXAMPLE_ITERATIONS", "12")))
    parser.add_argument(
        "--step-seconds", type=float, default=float(env("EXAMPLE_STEP_SECONDS", "0.25"))
    )
    parser.add_argument("--min-cpus", type=float, default=float(env("EXAMPLE_MIN_CPUS", "2")))
    parser.add_argument(
        "--wait-seconds", type=float, default=float(env("EXAMPLE_WAIT_SECONDS", "120"))
    )
    args = parser.parse_args(argv)
    if not args.storage_path:
        parser.error("set --storage-path or TUNE_CKPT_STORAGE_PATH (e.g. s3://tune-ckpt/sweeps)")
    if args.iterations < 6:
        parser.error("--iterations must be at least 6 (the crash happens at iteration 5)")
    return args


def wait_for_cpus(min_cpus: float, timeout: float) -> None:
    """Wait until the cluster's worker nodes have joined: trials need their CPUs."""
    deadline = time.monotonic() + timeout
    while True:
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if cpus >= min_cpus:
            alive = sum(1 for node in ray.nodes() if node["Alive"])
            print(f"cluster ready: {cpus:g} CPUs on {alive} nodes", flush=True)
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the cluster offers {cpus:g} CPUs after {timeout:g} s, not {min_cpus:g}"
            )
        time.sleep(1)


def run_sweep(args: argparse.Namespace, experiment: StorageLocation) -> tune.ResultGrid:
    if tune.Tuner.can_restore(experiment.uri()):
        print(f"resuming the experiment at {experiment.uri()}", flush=True)
        return tune.Tuner.restore(experiment.uri(), Quadratic, resume_errored=True).fit()
    tuner = tune.Tuner(
        Quadratic,
        param_space={
            "lr": tune.grid_search(LEARNING_RATES),
            "crash_lr": CRASH_LR,
            "crash_at": 5,
            "crash_marker": experiment.uri(CRASH_MARKER),
            "step_seconds": args.step_seconds,
        },
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(
            name=args.name,
            storage_path=args.storage_path,
            stop={"training_iteration": args.iterations},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2, checkpoint_at_end=True),
            failure_config=tune.FailureConfig(max_failures=2),
        ),
    )
    return tuner.fit()


def check(results: tune.ResultGrid, experiment: StorageLocation, iterations: int) -> list[str]:
    """Everything the example promises, as a list of what went wrong (empty: all good)."""
    problems = []
    killed = 0
    for result in results:
        label = f"trial lr={result.config.get('lr')}"
        metrics = result.metrics
        if result.error is not None:
            problems.append(f"{label} ended in error: {result.error}")
            continue
        if metrics.get("training_iteration") != iterations:
            problems.append(f"{label} stopped at iteration {metrics.get('training_iteration')}")
        if metrics.get("num_failures", 0) >= 1:
            killed += 1
            if not metrics.get("restored_from"):
                problems.append(f"{label} restarted from scratch, not from a checkpoint")
        if result.checkpoint is None:
            problems.append(f"{label} has no checkpoint")
    if len(results) != len(LEARNING_RATES):
        problems.append(f"{len(results)} trials, expected {len(LEARNING_RATES)}")
    if not experiment.exists(CRASH_MARKER):
        problems.append("no worker was killed (the crash marker is missing)")
    elif killed == 0:
        problems.append("the killed trial does not show the failure (num_failures is 0)")

    # What is on the storage, read back independently of the results.
    store = CheckpointStore(experiment)
    trial_dirs = [result.path.rstrip("/").rsplit("/", 1)[-1] for result in results]
    on_storage = {
        info.path.rsplit("/", 1)[-1]
        for info in experiment.list_dir("")
        if info.type == pafs.FileType.Directory
    }
    if not set(trial_dirs) <= on_storage:
        problems.append(f"trial folders missing on the storage: {set(trial_dirs) - on_storage}")
    for trial in sorted(trial_dirs):
        committed = store.list_committed(trial)
        if not committed:
            problems.append(f"{trial}: no committed checkpoint ({MANIFEST_NAME}) on the storage")
            continue
        for relative in committed:
            try:
                store.verify(relative)
            except Exception as exc:
                problems.append(f"{relative}: {exc}")
        names = ", ".join(rel.rsplit("/", 1)[-1] for rel in committed)
        print(f"  {trial}: committed and verified: {names}", flush=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (docker stop) and Ctrl-C unwind the driver; the journal keeps the running
    # trials unfinished, so running the script again with the same --name resumes them.
    ray.init(address=args.address, configure_logging=False)
    wait_for_cpus(args.min_cpus, args.wait_seconds)
    experiment = StorageLocation.resolve(args.storage_path).child(args.name)
    print(f"experiment: {experiment.uri()}", flush=True)

    try:
        results = run_sweep(args, experiment)
    except tune.STORAGE_ERRORS as exc:  # a missing bucket, wrong credentials, no endpoint
        print(f"\nSWEEP FAILED: the storage cannot be used: {exc}", file=sys.stderr, flush=True)
        return 1

    print()
    for result in results:
        m = result.metrics
        print(
            f"  lr={result.config['lr']:<5} iterations={m.get('training_iteration')} "
            f"loss={m.get('loss', float('nan')):.3g} failures={m.get('num_failures', 0)} "
            f"restored_from_iteration={m.get('restored_from')} "
            f"checkpoint={result.checkpoint.path if result.checkpoint else None}",
            flush=True,
        )
    problems = check(results, experiment, args.iterations)
    if problems:
        print("\nSWEEP FAILED:", *problems, sep="\n  ", file=sys.stderr, flush=True)
        return 1
    print(f"\nSWEEP OK: {len(results)} trials finished with committed checkpoints", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
