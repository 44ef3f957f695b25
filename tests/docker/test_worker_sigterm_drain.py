"""A worker node stopped the way Kubernetes and `docker stop` stop it: SIGTERM to the
start-worker.sh process (`ray start --block`, exec'd by the script). Ray 2.60's handler of
that signal drains its own node as preempted, with a deadline of now +
RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S, and waits until the raylet exits (idle) or the
timeout ends. The trial's worker process gets no SIGTERM: the sweep driver has to notice
the drain, take an emergency checkpoint and move the trial to another worker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_stack import DOCKER, Stack, running_stack, tail

HERE = Path(__file__).resolve().parent
ITERATIONS = 100
STEP_SECONDS = 0.1
# The drain the SIGTERM starts. The sweep's emergency budget is deadline - now - (1 s poll +
# 3 s margin), and a first save is estimated at 5 s (no save measured yet): 12 s leaves room
# for the drain being seen up to a second late.
DRAIN_TIMEOUT_S = 12


@pytest.fixture
def stack() -> Iterator[Stack]:
    """moto, the head (0 CPUs) and one 2-CPU worker whose drain timeout is DRAIN_TIMEOUT_S."""
    with running_stack(RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=str(DRAIN_TIMEOUT_S)) as running:
        yield running


def _steps(path: Path) -> list[tuple[str, int]]:
    """Every step the trial finished, in order: (node id, iteration)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:  # not written yet
        return []
    steps = []
    for line in lines:
        node, _, iteration = line.partition(" ")
        if iteration.isdigit():  # a line still being written is skipped
            steps.append((node, int(iteration)))
    return steps


def _read_step(path: Path) -> tuple[str, int] | None:
    steps = _steps(path)
    return steps[-1] if steps else None


def _wait_for_step(
    path: Path, driver: subprocess.Popen[bytes], stack: Stack, at_least: int, timeout: float
) -> tuple[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        step = _read_step(path)
        if step is not None and step[1] >= at_least:
            return step
        if driver.poll() is not None:
            pytest.fail(f"the driver exited with {driver.returncode}:\n{tail(stack.log('driver'))}")
        assert time.monotonic() < deadline, f"no step {at_least} in {timeout:g} s: {step}"
        time.sleep(0.05)


def test_sigterm_to_start_worker_drains_the_node_and_the_sweep_moves_the_trial(
    stack: Stack,
) -> None:
    step_file = stack.root / "step"
    driver = stack.start(
        "driver",
        [
            sys.executable,
            "-u",
            str(HERE / "drain_sweep.py"),
            "--address",
            stack.head_address,
            "--storage-path",
            str(stack.root / "storage"),
            "--step-file",
            str(step_file),
            "--iterations",
            str(ITERATIONS),
            "--step-seconds",
            str(STEP_SECONDS),
        ],
        stack.env,
    )
    doomed_node, _ = _wait_for_step(step_file, driver, stack, at_least=1, timeout=60)
    # A second worker to move to, healthy before the first one goes.
    spare_env = stack.node_env(
        "worker2", RAY_HEAD_ADDRESS=stack.head_address, RAY_WORKER_NUM_CPUS="2"
    )
    spare = stack.start("worker2", [str(DOCKER / "start-worker.sh")], spare_env)
    stack.wait_healthy("worker2", spare, spare_env, timeout=90)

    worker = dict(stack.processes)["worker"]
    node, reached = _wait_for_step(step_file, driver, stack, at_least=1, timeout=10)
    assert node == doomed_node and reached < ITERATIONS - 10, "the trial ran too far already"
    worker.send_signal(signal.SIGTERM)
    # The node drains, the trial leaves it, the idle raylet exits, and so does `ray start`:
    # well before the drain timeout.
    worker.wait(timeout=DRAIN_TIMEOUT_S + 20)
    driver.wait(timeout=ITERATIONS * STEP_SECONDS + 60)

    log = stack.log("worker").read_text(errors="replace")
    assert "received SIGTERM. Draining for up to" in log, tail(stack.log("worker"))
    assert "Local node finished draining" in log, tail(stack.log("worker"))
    output = stack.log("driver").read_text(errors="replace")
    assert driver.returncode == 0, output[-4000:]
    (line,) = [line for line in output.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line[len("RESULT ") :])
    assert result["error"] is None, output[-4000:]
    metrics = result["metrics"]
    assert metrics["num_failures"] == 0
    assert metrics["num_preemptions"] == 1
    # No periodic checkpoint exists: the restore is from the emergency checkpoint, taken
    # after the last step the trial ran on the drained node (at or after the SIGTERM), so
    # not one step was lost; the steps after it ran on the other worker.
    steps = _steps(step_file)
    last_on_doomed = max(i for n, i in steps if n == doomed_node)
    assert metrics["restored_from"] >= reached, (reached, metrics)
    assert metrics["restored_from"] == last_on_doomed, (last_on_doomed, metrics)
    moved = [(n, i) for n, i in steps if n != doomed_node]
    assert moved and moved[0][1] == last_on_doomed + 1, moved[:3]
    assert metrics["node_id"] != doomed_node
    assert metrics["training_iteration"] == ITERATIONS
    assert metrics["total"] == sum(range(1, ITERATIONS + 1))
