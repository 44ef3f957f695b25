"""A driver SIGKILLed in the middle of a PBT sweep, then ``Tuner.restore``: PBT's clocks
and history continue from ``scheduler_state.json``, and every trial finishes at the last
iteration from its journaled checkpoint (its own, or a donor's it had exploited), never
from scratch.

Not asserted: the same final metrics as an uninterrupted run. Asynchronous PBT's decisions
depend on the order results arrive from concurrent trials, which no seed fixes, so two
uninterrupted runs already differ (synchronous PBT's do not: test_pbt_synch_determinism)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray

import tune_ckpt as tune
from fault._pbt_driver import ITERATIONS, tuner
from fault._pbt_trainables import Grower
from tune_ckpt import journal
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

TESTS_DIR = str(Path(__file__).resolve().parents[1])

pytestmark = pytest.mark.usefixtures("local_ray")


def _kill_after_first_exploit(storage: Path) -> dict:
    """Run the sweep in a subprocess and SIGKILL it once PBT logged an exploit; returns
    the scheduler's saved state at that point."""
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "fault._pbt_driver", str(storage), address]
    driver = subprocess.Popen(command, cwd=TESTS_DIR)
    experiment = storage / "exp"
    deadline = time.monotonic() + 120
    try:
        while not (experiment / "pbt_global.txt").exists():
            assert driver.poll() is None, "the driver ended before it could be killed"
            assert time.monotonic() < deadline, "no exploit happened in time"
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, "the dead driver's actors did not stop in time"
        time.sleep(0.05)
    return json.loads((experiment / "scheduler_state.json").read_text())


def test_pbt_continues_after_a_driver_sigkill(tmp_path: Path) -> None:
    at_kill = _kill_after_first_exploit(tmp_path)
    experiment = tmp_path / "exp"
    restored = tune.Tuner.restore(str(experiment), Grower)
    results = restored.fit()

    assert all(r.error is None for r in results)
    assert all(r.metrics["training_iteration"] == ITERATIONS for r in results)
    after = json.loads((experiment / "scheduler_state.json").read_text())
    # The clocks went on from where they were, not from zero.
    assert after["num_perturbations"] >= at_kill["num_perturbations"] >= 1
    for trial_id, clock in at_kill["trials"].items():
        assert (
            after["trials"][trial_id]["last_perturbation_time"] >= clock["last_perturbation_time"]
        )
    location = StorageLocation.resolve(str(experiment))
    store = CheckpointStore(location)
    _, trials = journal.load(location)
    for trial in trials.values():
        assert trial.exploit is None
        history = [
            json.loads(line)
            for line in (experiment / trial.trial_dir / "result.json").read_text().splitlines()
        ]
        # One history: the restored run continued it (iterations never restart at 1).
        starts = [r for r in history if r["training_iteration"] == 1]
        assert len(starts) == 1, trial.trial_id
        # Every result after a restore continues from the checkpoint it loaded.
        for before, row in itertools.pairwise(history):
            loaded = row["loaded"]
            if loaded and loaded != before["loaded"]:
                assert row["value"] == loaded["value"] + row["rate"]
                assert row["training_iteration"] == loaded["iteration"] + 1
        for record in trial.checkpoints:
            store.verify(record.path, record.manifest_digest)
    assert tuner  # the module the subprocess ran
