"""Seeded synchronous PBT makes the same decisions whether or not its driver is SIGKILLed
in the middle and the sweep resumed with ``Tuner.restore``: the same exploits (exploiter,
donor, iterations, configs), the same history of every trial and the same final configs
and metrics as an uninterrupted run.

Synchronous PBT decides once every live trial is paused at the perturbation point with its
checkpoint committed, from the scores and the seeded generator only; the decision's
exploits are journaled in one flush before the scheduler's state is saved. So neither the
order results arrive in nor where the driver dies changes a decision."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import ray

import tune_ckpt as tune
from fault._pbt_driver import ITERATIONS, synch_tuner
from fault._pbt_trainables import Grower

TESTS_DIR = str(Path(__file__).resolve().parents[1])

pytestmark = pytest.mark.usefixtures("local_ray")


def _index(trial_id: str) -> int:
    """Trial ids are ``<tag>_<index>``; the tag differs between experiments."""
    return int(trial_id.rsplit("_", 1)[1])


def _summary(experiment: Path) -> dict[str, Any]:
    """What must not differ: exploits, every trial's history, final configs."""
    exploits = [
        [_index(line[0]), _index(line[1]), *line[2:]]
        for line in map(json.loads, (experiment / "pbt_global.txt").read_text().splitlines())
    ]
    histories: dict[int, list[tuple[int, int, int]]] = {}
    configs: dict[int, Any] = {}
    for folder in experiment.iterdir():
        if not (folder / "result.json").exists():
            continue
        rows = [json.loads(x) for x in (folder / "result.json").read_text().splitlines()]
        index = _index(rows[0]["trial_id"])
        histories[index] = [(r["training_iteration"], r["value"], r["rate"]) for r in rows]
        configs[index] = json.loads((folder / "params.json").read_text())["rate"]
    return {"exploits": exploits, "histories": histories, "configs": configs}


def _finals(results: tune.ResultGrid) -> list[tuple[int, int, int]]:
    return sorted(
        (_index(r.metrics["trial_id"]), r.metrics["value"], r.config["rate"]) for r in results
    )


def _run_and_kill(storage: Path, exploits_before_kill: int) -> None:
    """Run the synchronous sweep in a subprocess and SIGKILL its driver once PBT logged
    ``exploits_before_kill`` exploits."""
    address = ray.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "fault._pbt_driver", str(storage), address, "synch"]
    driver = subprocess.Popen(command, cwd=TESTS_DIR)
    log = storage / "exp" / "pbt_global.txt"
    deadline = time.monotonic() + 120
    try:
        while not log.exists() or len(log.read_text().splitlines()) < exploits_before_kill:
            assert driver.poll() is None, "the driver ended before it could be killed"
            assert time.monotonic() < deadline, "too few exploits happened in time"
            time.sleep(0.02)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, "the dead driver's actors did not stop in time"
        time.sleep(0.05)


def test_synch_pbt_restored_after_a_driver_sigkill_ends_as_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    uninterrupted = synch_tuner(str(tmp_path / "whole")).fit()
    assert all(r.error is None for r in uninterrupted)
    expected = _summary(tmp_path / "whole" / "exp")
    assert len(expected["exploits"]) >= 4, "too few exploits to tell runs apart"

    _run_and_kill(tmp_path / "killed", exploits_before_kill=3)
    restored = tune.Tuner.restore(str(tmp_path / "killed" / "exp"), Grower).fit()

    assert all(r.error is None for r in restored)
    assert all(r.metrics["training_iteration"] == ITERATIONS for r in restored)
    assert _finals(restored) == _finals(uninterrupted)
    got = _summary(tmp_path / "killed" / "exp")
    assert got["histories"] == expected["histories"]
    assert got["configs"] == expected["configs"]
    # pbt_global.txt is appended after an exploit is journaled as done: a driver killed
    # in between loses that line (the exploit itself is in the histories above).
    assert all(line in expected["exploits"] for line in got["exploits"])
    assert len(got["exploits"]) >= len(expected["exploits"]) - 1
