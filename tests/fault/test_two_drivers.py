"""One driver per experiment: a second driver is refused while the first lives; once the
first is SIGKILLed its lease goes stale, and Tuner.restore takes it over without --force.
A worker whose driver's lease is gone commits nothing."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import ray

import tune_ckpt as tune
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.errors import ExperimentLockedError, LeaseLostError
from tune_ckpt.persistence import CheckpointWriter, TrialContext
from tune_ckpt.storage import lease as lease_mod
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME
from tune_ckpt.storage.owner import current_owner
from tune_ckpt.trainable import TrainableState

from ._driver import TESTS_DIR
from ._slow_driver import ITERATIONS, tuner
from ._trainables import accumulate_fn, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")

LEASE_TIMEOUT_S = "1.5"
CLI = os.path.join(os.path.dirname(sys.executable), "tune-ckpt")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=120, check=False, cwd=TESTS_DIR
    )


def cli_json(*args: str) -> dict[str, Any]:
    proc = cli(*args, "--json")
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_second_driver_refused_then_stale_lease_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(lease_mod.TIMEOUT_ENV, LEASE_TIMEOUT_S)
    experiment = tmp_path / "exp"
    location = StorageLocation.resolve(str(experiment))
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fault._slow_driver",
            str(tmp_path),
            ray.get_runtime_context().gcs_address,
        ],
        env=dict(os.environ),
        cwd=TESTS_DIR,
    )
    try:
        wait_for(
            lambda: first.poll() is None and any(experiment.glob("*/checkpoint_000002")),
            "the first driver's first checkpoint",
        )
        (held,) = lease_mod.read_leases(location)
        assert (held.host, held.pid, held.timeout_s) == (socket.gethostname(), first.pid, 1.5)

        # A second driver in this process: refused, naming the first, before writing anything.
        journal = (experiment / "experiment_journal.jsonl").read_bytes()
        with pytest.raises(ExperimentLockedError, match=f"pid {first.pid}") as refused:
            tuner(str(tmp_path)).fit()
        assert socket.gethostname() in str(refused.value)
        assert "\n" not in str(refused.value)
        # And a third through the CLI: one line, exit 2, before Ray starts.
        resume = cli("resume", str(experiment), "--trainable", "fault._trainables:accumulate_fn")
        assert resume.returncode == 2, resume.stderr
        (line,) = resume.stderr.splitlines()
        assert line.startswith("tune-ckpt: error: ") and f"pid {first.pid}" in line
        assert cli_json("ls", str(experiment))["state"] == "running"
        assert first.poll() is None, "the first driver ended before it could be killed"
        assert [lease.name for lease in lease_mod.read_leases(location)] == [held.name]
        assert (experiment / "experiment_journal.jsonl").read_bytes().startswith(journal)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    # Dead: its lease stays behind and goes stale once its heartbeat is older than 1.5 s.
    wait_for(lambda: lease_mod.read_leases(location)[0].is_stale(), "the lease to go stale")
    listing = cli_json("ls", str(experiment))
    assert listing["state"] == "interrupted"
    assert listing["lease"]["pid"] == first.pid and listing["lease"]["stale"]
    assert "INTERRUPTED" in listing["statuses"] and "RUNNING" not in listing["statuses"]
    assert cli_json("ls", str(tmp_path))["experiments"][0]["state"] == "interrupted"
    dry = cli_json("gc", str(experiment), "--dry-run")
    assert [m["path"] for m in dry["markers"]] == [str(experiment / held.name)]
    assert dry["running"] == []
    assert (experiment / held.name).exists()

    with caplog.at_level(logging.INFO, logger="tune_ckpt.storage.lease"):
        results = tune.Tuner.restore(str(experiment), accumulate_fn).fit()
    takeovers = [r.getMessage() for r in caplog.records if "taking over" in r.getMessage()]
    assert len(takeovers) == 1 and f"pid {first.pid}" in takeovers[0]
    for result in results:
        assert result.error is None
        assert result.metrics["total"] == expected_total(ITERATIONS, result.config["a"])

    after = cli_json("ls", str(experiment))
    assert after["state"] == "finished" and after["statuses"] == {"TERMINATED": 2}
    assert list(experiment.glob(f"{lease_mod.MARKER_PREFIX}*")) == []
    assert cli_json("gc", str(experiment))["markers"] == []

    # A worker the dead driver left running would commit under its old lease: refused.
    trial_dir = results[0].path.rsplit("/", 1)[1]
    newest = experiment / trial_dir / f"checkpoint_{ITERATIONS:06d}"
    manifest = (newest / MANIFEST_NAME).read_bytes()
    zombie = TrialContext("zombie", trial_dir, location, "shared", held.name, CheckpointConfig())
    with pytest.raises(ray.exceptions.RayTaskError) as lost:
        ray.get(commit_in_worker.remote(zombie, ITERATIONS))
    assert isinstance(lost.value.as_instanceof_cause(), LeaseLostError)
    assert (newest / MANIFEST_NAME).read_bytes() == manifest

    # The same worker under a live lease commits (the check is not always failing), with the
    # owner token the restored driver gave the trial's last actor (storage/owner).
    live = lease_mod.acquire(location)
    try:
        alive = TrialContext(
            "alive", trial_dir, location, "shared", live.name, CheckpointConfig(),
            owner=current_owner(location, trial_dir),
        )  # fmt: skip
        ray.get(commit_in_worker.remote(alive, ITERATIONS + 1))
        assert (
            experiment / trial_dir / f"checkpoint_{ITERATIONS + 1:06d}" / MANIFEST_NAME
        ).exists()
    finally:
        live.release()


@ray.remote(num_cpus=0)
def commit_in_worker(ctx: TrialContext, iteration: int) -> str:
    """What a trial's actor does at a checkpoint of a function trainable, in a Ray worker."""
    writer = CheckpointWriter(ctx)
    assert writer.shared
    saved = writer.save_checkpoint(
        Checkpoint.from_dict({"total": -1, "iteration": iteration}), TrainableState(iteration)
    )
    return saved.path
