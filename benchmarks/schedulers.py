"""Scheduler benchmarks: ``python -m benchmarks.schedulers [--only asha pbt pbt_function]``
(not run by CI).

- **asha**: 64 function trials, ``ASHAScheduler(max_t=81, grace_period=1,
  reduction_factor=3)``, steps of 0.01 s, 2 CPUs. Each trial's score is its quality times a
  learning curve; the qualities are a seeded shuffle, so later trials are not always better
  and ASHA stops most of them. Reported: wall time, iterations run in all, trials that reached
  ``max_t``.
- **pbt** / **pbt_function**: a population of 8 (class trainable / function trainable),
  2 CPUs, ``perturbation_interval=4``, 40 iterations of 0.05 s, a 32 MiB checkpoint,
  ``num_to_keep=2``. Every save and every restore is logged by the trainable itself (who
  saved, who loaded whose state), so the figures do not depend on either framework's
  bookkeeping. Reported: wall time, checkpoints saved and their bytes, exploits (a restore of
  another trial's state), bytes written per exploit, and the experiment's disk use at the end.

Both frameworks run the same code, apart from the import (``tune_ckpt`` or ``ray.tune``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import tempfile
import time
from types import ModuleType
from typing import Any

import ray

MiB = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))
ASHA_TRIALS = 64
ASHA_MAX_T = 81
PBT_POPULATION = 8
PBT_ITERATIONS = 40
PBT_MIB = 32


def _schedulers(tune: ModuleType) -> ModuleType:
    return importlib.import_module(f"{tune.__name__}.schedulers")


def _init_ray() -> None:
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)


def _disk_use(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed while walking (a late deletion)
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


# -- ASHA ----------------------------------------------------------------------------------


def asha(tune: ModuleType, storage: str) -> dict[str, Any]:
    """64 function trials under ASHA (see the module docstring)."""
    qualities = [round(0.2 + 0.8 * i / (ASHA_TRIALS - 1), 4) for i in range(ASHA_TRIALS)]
    random.Random(7).shuffle(qualities)

    def curve(config: dict[str, Any]) -> None:
        for step in range(1, ASHA_MAX_T + 1):
            time.sleep(0.01)
            tune.report({"score": config["q"] * (1 - 0.9**step)})

    _init_ray()
    scheduler = _schedulers(tune).ASHAScheduler(
        max_t=ASHA_MAX_T, grace_period=1, reduction_factor=3
    )
    start = time.perf_counter()
    grid = tune.Tuner(
        curve,
        param_space={"q": tune.grid_search(qualities)},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=storage, name="asha", verbose=0),
    ).fit()
    seconds = time.perf_counter() - start
    iterations = [r.metrics.get("training_iteration", 0) for r in grid]
    return {
        "seconds": seconds,
        "trials": len(grid),
        "iterations": sum(iterations),
        "reached_max_t": sum(1 for i in iterations if i >= ASHA_MAX_T),
    }


# -- PBT -----------------------------------------------------------------------------------


def _log(config: dict[str, Any], event: str, **fields: Any) -> None:
    path = os.path.join(config["log_dir"], f"{os.getpid()}-{time.monotonic_ns()}.json")
    with open(path, "w") as f:
        json.dump({"event": event, **fields}, f)


def _state_bytes(owner: str, value: float, blob: bytes) -> bytes:
    return json.dumps({"owner": owner, "value": value}).encode().ljust(256) + blob


def _parse_state(data: bytes) -> tuple[str, float, bytes]:
    head = json.loads(data[:256].decode().strip())
    return head["owner"], float(head["value"]), data[256:]


def _pbt_class(tune: ModuleType) -> type:
    class Grower(tune.Trainable):  # type: ignore[misc,name-defined]
        """A value that grows by ``lr`` each step (slower for large ``lr``, so PBT has
        something to find), and ``PBT_MIB`` MiB of state."""

        def setup(self, config: dict[str, Any]) -> None:
            self.value = 0.0
            self.owner = str(self.trial_id)
            self.blob = os.urandom(PBT_MIB * MiB)

        def step(self) -> dict[str, Any]:
            time.sleep(0.05)
            lr = self.config["lr"]
            self.value += lr * (1.0 - lr)
            return {"value": self.value}

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, "state.bin"), "wb") as f:
                f.write(_state_bytes(str(self.trial_id), self.value, self.blob))
            _log(self.config, "save", trial=str(self.trial_id), bytes=PBT_MIB * MiB)

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, "state.bin"), "rb") as f:
                owner, self.value, self.blob = _parse_state(f.read())
            _log(self.config, "load", trial=str(self.trial_id), owner=owner)

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            self.config = new_config
            return True

    return Grower


def _pbt_function(tune: ModuleType) -> Any:
    def grower(config: dict[str, Any]) -> None:
        trial = tune.get_context().get_trial_id()
        value, blob, start = 0.0, None, 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                with open(os.path.join(folder, "state.bin"), "rb") as f:
                    owner, value, blob = _parse_state(f.read())
                with open(os.path.join(folder, "iteration")) as f:
                    start = int(f.read())
            _log(config, "load", trial=trial, owner=owner)
        blob = blob or os.urandom(PBT_MIB * MiB)
        for step in range(start + 1, PBT_ITERATIONS + 1):
            time.sleep(0.05)
            lr = config["lr"]
            value += lr * (1.0 - lr)
            if step % 4 == 0:  # a checkpoint at each perturbation point, as Ray's examples do
                with tempfile.TemporaryDirectory() as folder:
                    with open(os.path.join(folder, "state.bin"), "wb") as f:
                        f.write(_state_bytes(trial, value, blob))
                    with open(os.path.join(folder, "iteration"), "w") as f:
                        f.write(str(step))
                    _log(config, "save", trial=trial, bytes=PBT_MIB * MiB)
                    tune.report({"value": value}, checkpoint=tune.Checkpoint.from_directory(folder))
            else:
                tune.report({"value": value})

    return grower


def _pbt(tune: ModuleType, storage: str, trainable: Any) -> dict[str, Any]:
    log_dir = tempfile.mkdtemp(prefix="bench_pbt_log_")
    _init_ray()
    scheduler = _schedulers(tune).PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=4,
        hyperparam_mutations={"lr": tune.uniform(0.01, 0.5)},
    )
    lrs = [0.02 + 0.06 * i for i in range(PBT_POPULATION)]
    start = time.perf_counter()
    grid = tune.Tuner(
        trainable,
        param_space={"lr": tune.grid_search(lrs), "log_dir": log_dir},
        tune_config=tune.TuneConfig(metric="value", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(
            storage_path=storage,
            name="pbt",
            verbose=0,
            stop={"training_iteration": PBT_ITERATIONS},
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    ).fit()
    seconds = time.perf_counter() - start
    events = []
    for name in os.listdir(log_dir):
        with open(os.path.join(log_dir, name)) as f:
            events.append(json.load(f))
    saves = [e for e in events if e["event"] == "save"]
    exploits = [e for e in events if e["event"] == "load" and e["owner"] != e["trial"]]
    written = sum(e["bytes"] for e in saves)
    return {
        "seconds": seconds,
        "errors": sum(1 for r in grid if r.error is not None),
        "best_value": max(r.metrics.get("value", 0.0) for r in grid),
        "saves": len(saves),
        "exploits": len(exploits),
        "bytes_written": written,
        "bytes_per_exploit": written / len(exploits) if exploits else None,
        "disk_use_end": _disk_use(os.path.join(storage, "pbt")),
    }


def pbt(tune: ModuleType, storage: str) -> dict[str, Any]:
    """PBT over a class trainable (see the module docstring)."""
    return _pbt(tune, storage, _pbt_class(tune))


def pbt_function(tune: ModuleType, storage: str) -> dict[str, Any]:
    """PBT over a function trainable that checkpoints at each perturbation point."""
    return _pbt(tune, storage, _pbt_function(tune))


WORKLOADS = {"asha": asha, "pbt": pbt, "pbt_function": pbt_function}
TARGETS = {"asha": 0.1, "pbt": 0.2, "pbt_function": 0.2}
"""Upper bounds on the ratio tune_ckpt / Ray Tune of each workload's ``seconds``."""


def main() -> None:
    from benchmarks.__main__ import compile_tune_ckpt, ray_tune_installed, run_one, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--out", default=os.path.join(HERE, "results.schedulers.jsonl"))
    args = parser.parse_args()
    compile_tune_ckpt()
    lines = []
    for workload in args.only or list(WORKLOADS):
        line: dict[str, Any] = {"workload": workload, "target_ratio": TARGETS[workload]}
        line["tune_ckpt"] = ours = run_one(workload, "tune_ckpt", args.timeout)
        if ray_tune_installed():
            line["ray_tune"] = theirs = run_one(workload, "ray_tune", args.timeout)
            if "seconds" in ours and "seconds" in theirs:
                line["ratio"] = ours["seconds"] / theirs["seconds"]
                line["target_met"] = line["ratio"] <= TARGETS[workload]
        print(json.dumps(line), flush=True)
        lines.append(line)
    write_results(args.out, lines)


if __name__ == "__main__":
    main()
