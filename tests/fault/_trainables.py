"""Trainables with faults injected for real, shared by the fault tests.

Every trainable accumulates ``total = sum(i * a for i in 1..iteration)``, so its final
metrics equal a fault-free run's only if each restore brought back the exact state, and
reports ``restored_from``: the iteration of the checkpoint it was restored from (0: never).

A fault fires once per trial: ``config["fault_at"]`` is the iteration, ``config["fault"]``
what happens, and a marker file in ``config["marker_dir"]`` records that it fired. The fault
``"hang"`` holds the step until a file ``release`` appears in ``marker_dir`` (a node removed
meanwhile loses exactly the steps since the last checkpoint); ``"zombie_commit"`` leaves a
copy of the worker that commits after its node is gone (see ``_zombie_commit``).
``config["hold_at"]`` (with ``hold_a``, the trial whose ``a`` it is): the step waits there for
``release-hold`` in ``marker_dir``, holding the trial's node.

``config["save_marks"]``: each save leaves ``saved-<pid>-<iteration>`` in ``marker_dir``.

``config["restore_gate"]``: a folder where ``Accumulator.load_checkpoint`` leaves a file
named after its process holding its node's id, then waits until the folder holds ``open``
(a restore as slow as a test needs).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import time
from typing import Any

import tune_ckpt as tune


def expected_total(iterations: int, a: int = 1) -> int:
    return sum(i * a for i in range(1, iterations + 1))


def _fire_once(config: dict[str, Any], trial_id: str, iteration: int) -> str | None:
    """The fault to inject now, or None. 'raise_always' fires on every attempt. With
    ``config["fault_a"]``, only the trial whose ``a`` equals it is hit."""
    fault = config.get("fault")
    if fault is None or config.get("fault_at") != iteration:
        return None
    if "fault_a" in config and config.get("a", 1) != config["fault_a"]:
        return None
    if fault == "raise_always":
        return fault
    marker = os.path.join(config["marker_dir"], f"{trial_id}-{iteration}")
    if os.path.exists(marker):
        return None
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    return str(fault)


def inject(fault: str, config: dict[str, Any], trial_id: str) -> None:
    if fault in ("raise", "raise_always"):
        raise RuntimeError(f"injected failure in trial {trial_id}")
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "exit":
        os._exit(1)
    if fault == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    if fault == "hang":
        _wait_for_file(os.path.join(config["marker_dir"], "release"))
    if fault == "zombie_commit":
        _zombie_commit(config, trial_id)
    if fault == "truncate_latest_then_raise":
        pattern = os.path.join(config["experiment_dir"], f"*{trial_id}", "checkpoint_*")
        latest = sorted(glob.glob(pattern))[-1]
        with open(os.path.join(latest, "state.json"), "r+") as f:
            f.truncate(3)
        raise RuntimeError(f"injected failure after truncating {latest}")


def _zombie_commit(config: dict[str, Any], trial_id: str) -> None:
    """A worker that outlives its node's loss long enough to commit: a forked copy of this
    process (no Ray threads, so nothing tells it its node is gone; in a session of its own, so
    the node's teardown does not reach it; forked twice, so the worker's exit does not
    either) leaves its pid in ``{trial_id}-zombie`` and waits
    for ``release-zombie`` in ``marker_dir``, then returns from the step, so the worker code
    saves and commits the checkpoint due at this iteration. This process holds the step until
    its node is removed. The test kills the copy when it is done."""
    marker_dir = config["marker_dir"]
    if os.fork() == 0:
        # Forked twice, so it is no child of the worker, whose exit kills its children.
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        with open(os.path.join(marker_dir, f"{trial_id}-zombie.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.rename(f.name, os.path.join(marker_dir, f"{trial_id}-zombie"))
        _wait_for_file(os.path.join(marker_dir, "release-zombie"))
        return
    _wait_for_file(os.path.join(marker_dir, "never"))


def _wait_for_file(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.02)


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


class Accumulator(tune.Trainable):
    """Class API; checkpoints its total and iteration as JSON files."""

    def setup(self, config: dict[str, Any]) -> None:
        self.total = 0
        self.restored_from = 0
        # Asked once: a ``zombie_commit`` copy of this process must not call into Ray.
        self.node_id = _node_id()

    def step(self) -> dict[str, Any]:
        iteration = self.iteration + 1
        time.sleep(self.config.get("sleep", 0.0))
        self.total += iteration * self.config.get("a", 1)
        fault = _fire_once(self.config, self.trial_id, iteration)
        if fault is not None and fault != "crash_in_save":
            inject(fault, self.config, self.trial_id)
        if self.config.get("hold_at") == iteration and self.config.get("a", 1) == self.config.get(
            "hold_a", self.config.get("a", 1)
        ):
            # Keeps this trial's node busy until the test writes ``release-hold``.
            _wait_for_file(os.path.join(self.config["marker_dir"], "release-hold"))
        if self.config.get("node_file"):
            with open(os.path.join(self.config["node_file"], self.trial_id), "w") as f:
                f.write(self.node_id)
        if self.config.get("step_dir"):  # the iteration reached, for a test to watch
            with open(os.path.join(self.config["step_dir"], self.trial_id), "w") as f:
                f.write(str(iteration))
        return {"total": self.total, "restored_from": self.restored_from, "node_id": self.node_id}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.config.get("save_marks"):  # which process saved which iteration, for a test
            open(os.path.join(self.config["marker_dir"], f"saved-{os.getpid()}-{self.iteration}"),
                 "w").close()  # fmt: skip
        state = json.dumps({"total": self.total, "iteration": self.iteration})
        path = os.path.join(checkpoint_dir, "state.json")
        if self.config.get("fault") == "crash_in_save" and self.config.get("fault_at") == (
            self.iteration
        ):
            marker = os.path.join(self.config["marker_dir"], f"{self.trial_id}-save")
            if not os.path.exists(marker):
                open(marker, "w").close()
                with open(path, "w") as f:
                    f.write(state[: len(state) // 2])
                    f.flush()
                os._exit(1)  # the worker dies halfway through writing the checkpoint
        with open(path, "w") as f:
            f.write(state)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        gate = self.config.get("restore_gate")
        if gate:
            with open(os.path.join(gate, str(os.getpid())), "w") as f:
                f.write(_node_id())
            _wait_for_file(os.path.join(gate, "open"))
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            state = json.load(f)
        self.total = state["total"]
        self.restored_from = state["iteration"]


def describe_config(config: dict[str, Any]) -> str:
    """Every key and value of ``config`` with its type (and numpy dtype), so a test can see
    whether the config a worker received differs in any way from the one it was given."""

    def typed(value: Any) -> str:
        dtype = getattr(value, "dtype", None)  # numpy scalars and arrays
        return f"{value!r}:{type(value).__name__}" + (f"[{dtype}]" if dtype is not None else "")

    def walk(value: Any) -> str:
        if isinstance(value, dict):
            items = sorted(f"{typed(k)}={walk(v)}" for k, v in value.items())
            return "{" + ", ".join(items) + "}"
        if isinstance(value, list | tuple):
            return f"{type(value).__name__}(" + ", ".join(walk(v) for v in value) + ")"
        return typed(value)

    return walk(config)


def accumulate_fn(config: dict[str, Any]) -> None:
    """Function API; checkpoints through a callable, so the runner decides when. With
    ``config["describe_config"]`` it also reports :func:`describe_config` of its config."""
    trial_id = f"fn-{config.get('name', 'x')}"
    checkpoint = tune.get_checkpoint()
    state = checkpoint.to_dict() if checkpoint else {"total": 0, "iteration": 0}
    restored_from = state["iteration"]
    while state["iteration"] < config["iterations"]:
        state["iteration"] += 1
        time.sleep(config.get("sleep", 0.0))
        state["total"] += state["iteration"] * config.get("a", 1)
        fault = _fire_once(config, trial_id, state["iteration"])
        if fault is not None:
            inject(fault, config, trial_id)
        snapshot = dict(state)
        metrics: dict[str, Any] = {"total": state["total"], "restored_from": restored_from}
        if config.get("describe_config"):
            metrics["config_types"] = describe_config(config)
        tune.report(
            metrics,
            checkpoint=lambda snapshot=snapshot: tune.Checkpoint.from_dict(snapshot),
        )
