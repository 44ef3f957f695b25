"""Drain benchmarks: ``python -m benchmarks.drain`` (not run by CI).

- **drain**: 4 trials on a 3-node cluster (a head without CPUs, two 2-CPU workers), steps of
  0.1 s, a periodic checkpoint every 50 iterations, 8 MiB of state. Once every trial has run
  30 iterations, the node of trial t0 is drained with a 10 s deadline
  (``tune_ckpt.driver.drains.drain_node``, what Ray's own SIGTERM handler, KubeRay and the
  spot watcher do), a fresh 2-CPU node joins, and the drained node is removed at the
  deadline. tune_ckpt and Ray Tune (which has no drain handling) run the same code.
- **budget** (tune_ckpt only): 6 trials on one drained node whose saves sleep 1 s to 4 s,
  each measured once by a save of its own before the drain, and a 6 s deadline: which were
  saved, and whether the plan's saved value is the most any two-lane schedule fits in the
  same budget (an exhaustive search, as tests/unit/test_emergency.py does).

Everything is measured from what the trials did: each step appends ``node iteration time``
to a log file per trial, each trial reports ``restored_from`` (the iteration of the checkpoint
it was restored from), and iterations lost are the last iteration a trial ran on the drained
node minus the iteration it was restored from.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import ray

MiB = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def _trainable(tune: ModuleType) -> type:
    class Stateful(tune.Trainable):  # type: ignore[misc,name-defined]
        """Its settings in ``config["trial"]``: ``mib`` MiB of state; steps of ``sleep``;
        saves that sleep ``save_s`` more; a save of its own at ``save_at``."""

        def setup(self, config: dict[str, Any]) -> None:
            self.cfg = config["trial"]
            self.i = 0
            self.restored_from = 0
            self.blob = os.urandom(self.cfg.get("mib", 0) * MiB)

        def step(self) -> dict[str, Any]:
            self.i += 1
            time.sleep(self.cfg["sleep"])
            node = ray.get_runtime_context().get_node_id()
            with open(os.path.join(self.cfg["log_dir"], self.cfg["name"]), "a") as f:
                f.write(f"{node} {self.i} {time.time():.3f}\n")
            result: dict[str, Any] = {"i": self.i, "restored_from": self.restored_from}
            if self.i == self.cfg.get("save_at"):
                result["should_checkpoint"] = True
            return result

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            time.sleep(self.cfg.get("save_s", 0.0))
            with open(os.path.join(checkpoint_dir, "state.bin"), "wb") as f:
                f.write(self.i.to_bytes(8, "little") + self.blob)

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, "state.bin"), "rb") as f:
                data = f.read()
            self.i = int.from_bytes(data[:8], "little")
            self.blob = data[8:]
            self.restored_from = self.i

    return Stateful


def _steps(log_dir: str) -> dict[str, list[tuple[str, int, float]]]:
    """Each trial's steps: (node id, iteration, epoch seconds), in order."""
    steps: dict[str, list[tuple[str, int, float]]] = {}
    for name in sorted(os.listdir(log_dir)):
        rows = []
        with open(os.path.join(log_dir, name)) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:  # a line being written is skipped
                    rows.append((parts[0], int(parts[1]), float(parts[2])))
        steps[name] = rows
    return steps


class _Sweep:
    """A sweep on a local multi-node cluster, run in a thread (Ray's Cluster adds and
    removes nodes from the main thread only)."""

    def __init__(self, tune: ModuleType, worker_cpus: int, trials: list[dict[str, Any]],
                 storage: str, stop: int, frequency: int) -> None:  # fmt: skip
        from ray.cluster_utils import Cluster

        self.worker_cpus = worker_cpus
        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(len(trials) // worker_cpus):
            self.cluster.add_node(num_cpus=worker_cpus)
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address, configure_logging=False, log_to_driver=False)
        self.log_dir = tempfile.mkdtemp(prefix="bench_drain_steps_")
        space = {"trial": tune.grid_search([{**t, "log_dir": self.log_dir} for t in trials])}
        trainable = _trainable(tune)
        self.outcome: dict[str, Any] = {}

        def fit() -> None:
            self.outcome["results"] = tune.Tuner(
                trainable,
                param_space=space,
                run_config=tune.RunConfig(
                    storage_path=storage,
                    name="bench",
                    verbose=0,
                    stop={"training_iteration": stop},
                    checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=frequency),
                    failure_config=tune.FailureConfig(max_failures=3),
                ),
            ).fit()

        self.thread = threading.Thread(target=fit, daemon=True)
        self.thread.start()

    def wait(self, condition: Callable[[dict[str, list[tuple[str, int, float]]]], bool]) -> None:
        while not condition(_steps(self.log_dir)):
            if not self.thread.is_alive():
                raise RuntimeError("the sweep ended before the drain")
            time.sleep(0.02)

    def drain_and_remove(self, node_id: str, deadline_s: float) -> float:
        """Drain ``node_id`` (deadline in ``deadline_s``), add a fresh node, remove the
        drained one at the deadline; the time of the drain."""
        from tune_ckpt.driver import drains

        drained_at = time.time()
        drains.drain_node(node_id, drained_at + deadline_s)
        self.cluster.add_node(num_cpus=self.worker_cpus)
        time.sleep(max(0.0, drained_at + deadline_s - time.time()))
        node = next(n for n in self.cluster.worker_nodes if n.node_id == node_id)
        self.cluster.remove_node(node, allow_graceful=False)
        return drained_at

    def finish(self) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, int, float]]]]:
        """The trials' final metrics (with their names) and their steps."""
        self.thread.join(timeout=600)
        steps = _steps(self.log_dir)
        results = self.outcome.get("results")
        ray.shutdown()
        self.cluster.shutdown()
        shutil.rmtree(self.log_dir, ignore_errors=True)
        if results is None:
            raise RuntimeError("the sweep failed")
        metrics = [dict(r.metrics, name=r.config["trial"]["name"]) for r in results]
        return metrics, steps


def _at(steps: list[tuple[str, int, float]], moment: float) -> tuple[str, int]:
    """The node and iteration of the last step before ``moment``."""
    node, iteration, _ = [s for s in steps if s[2] <= moment][-1]
    return node, iteration


def _losses(
    metrics: list[dict[str, Any]], steps: dict[str, list[tuple[str, int, float]]],
    drained: str, drained_at: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per trial on the drained node: the iteration at the drain, the last one it ran there,
    the iteration it was restored from (its own report), the iterations lost, and when it
    ran its first step elsewhere."""
    rows = []
    for m in metrics:
        trial_steps = steps[m["name"]]
        if _at(trial_steps, drained_at)[0] != drained:
            continue
        last_there = max(i for node, i, _ in trial_steps if node == drained)
        first_elsewhere = next(
            t for node, _, t in trial_steps if node != drained and t > drained_at
        )
        rows.append(
            {
                "trial": m["name"],
                "iteration_at_drain": _at(trial_steps, drained_at)[1],
                "last_iteration_on_drained_node": last_there,
                "restored_from": m["restored_from"],
                "iterations_lost": last_there - m["restored_from"],
                "training_again_after_s": round(first_elsewhere - drained_at, 2),
                "num_failures": m.get("num_failures"),
                "num_preemptions": m.get("num_preemptions"),
                "final_iteration": m["training_iteration"],
            }
        )
    return rows


def drain(tune: ModuleType, storage: str) -> dict[str, Any]:
    """The drain workload; see the module docstring."""
    trials = [{"name": f"t{k}", "sleep": 0.1, "mib": 8} for k in range(4)]
    sweep = _Sweep(tune, worker_cpus=2, trials=trials, storage=storage, stop=170, frequency=50)
    sweep.wait(lambda s: len(s) == 4 and all(rows and rows[-1][1] >= 30 for rows in s.values()))
    drained = _steps(sweep.log_dir)["t0"][-1][0]
    drained_at = sweep.drain_and_remove(drained, deadline_s=10)
    metrics, steps = sweep.finish()
    rows = _losses(metrics, steps, drained, drained_at)
    return {
        "trials": rows,
        "iterations_lost": [r["iterations_lost"] for r in rows],
        "all_training_again_s": max(r["training_again_after_s"] for r in rows),
        "seconds": max(r["training_again_after_s"] for r in rows),
    }


def _best_value(trials: list[dict[str, float]], budget: float, lanes: int = 2) -> float:
    """The most value any assignment of the saves to ``lanes`` lanes fits in ``budget``."""
    best = 0.0
    for assignment in itertools.product(range(lanes + 1), repeat=len(trials)):
        load, value = [0.0] * lanes, 0.0
        for trial, lane in zip(trials, assignment, strict=True):
            if lane < lanes:
                load[lane] += trial["save_cost_s"]
                value += trial["value"]
        if max(load) <= budget:
            best = max(best, value)
    return best


def budget(tune: ModuleType, storage: str) -> dict[str, Any]:
    """The budget workload (tune_ckpt only); see the module docstring."""
    from tune_ckpt.driver.evacuation import Evacuation

    plans: list[dict[str, Any]] = []
    original = Evacuation.plan

    def recording(self: Evacuation, node_id: str, trials: list[Any], deadline: Any,
                  now: float) -> Any:  # fmt: skip
        plan = original(self, node_id, trials, deadline, now)
        plans.append({"trials": list(trials), "plan": plan})
        return plan

    Evacuation.plan = recording  # type: ignore[method-assign]  # observe, not change
    save_s = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0]
    save_at = [12, 5, 20, 8, 16, 3]  # different unsaved work at the drain
    trials = [
        {"name": f"t{k}", "sleep": 0.1, "save_s": s, "save_at": a}
        for k, (s, a) in enumerate(zip(save_s, save_at, strict=True))
    ]
    sweep = _Sweep(tune, worker_cpus=6, trials=trials, storage=storage, stop=150, frequency=0)
    # Drain once every trial has saved once (its cost measured) and run on for a while.
    sweep.wait(lambda s: len(s) == 6 and all(rows and rows[-1][1] >= 45 for rows in s.values()))
    drained = _steps(sweep.log_dir)["t0"][-1][0]
    drained_at = sweep.drain_and_remove(drained, deadline_s=6)
    metrics, steps = sweep.finish()
    Evacuation.plan = original  # type: ignore[method-assign]
    rows = _losses(metrics, steps, drained, drained_at)
    (record,) = [p for p in plans if p["trials"]]
    plan = record["plan"]
    names = {m["trial_id"]: m["name"] for m in metrics}  # trial ids as the planner saw them
    inputs = [
        {
            "trial": names[t.trial_id],
            "value": t.value,
            "save_cost_s": t.save_cost_s,
            "planned": plan.action(t.trial_id).value,
        }
        for t in record["trials"]
    ]
    best = _best_value(inputs, plan.budget_s)  # on the planner's own, unrounded figures
    for row in inputs:
        row["value"], row["save_cost_s"] = round(row["value"], 2), round(row["save_cost_s"], 2)
    saved = sorted(r["trial"] for r in rows if r["iterations_lost"] == 0)
    return {
        "budget_s": round(plan.budget_s, 2),
        "plan": sorted(inputs, key=lambda i: i["trial"]),
        "planned_saves": sorted(names[t] for t in plan.save_order),
        "saved_per_results": saved,
        "plan_saved_value": round(plan.saved_value, 2),
        "best_possible_value": round(best, 2),
        "plan_is_best": abs(plan.saved_value - best) < 1e-6,
        "trials": rows,
        "seconds": max(r["training_again_after_s"] for r in rows),
    }


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {"drain": drain, "budget": budget}


def main() -> None:
    from benchmarks.__main__ import compile_tune_ckpt, ray_tune_installed, run_one, write_results

    compile_tune_ckpt()
    lines = []
    runs = [("drain", "tune_ckpt"), ("budget", "tune_ckpt")]
    if ray_tune_installed():
        runs.insert(1, ("drain", "ray_tune"))
    for workload, which in runs:
        line = run_one(workload, which, 600)
        print(json.dumps(line), flush=True)
        lines.append(line)
    write_results(os.path.join(HERE, "results.drain.jsonl"), lines)


if __name__ == "__main__":
    main()
