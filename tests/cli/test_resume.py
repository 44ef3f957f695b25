"""``tune-ckpt resume``: an experiment whose trial ended in ERROR, or whose driver was
killed, completes through the CLI in a subprocess, which joins this test's local Ray
instance (``--address``)."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest
import ray
from fault._driver import ITERATIONS as DRIVER_ITERATIONS
from fault._driver import kill_driver_mid_sweep

from .conftest import FAIL_AT, ITERATIONS, copy_experiment, run_cli, run_json, sweep_failed

TRAINABLE = "cli._trainables:Counter"


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory, module_local_ray: None) -> tuple[Path, str]:
    """An experiment whose one trial raised at iteration FAIL_AT (it would not raise again),
    and that trial's id."""
    root = tmp_path_factory.mktemp("resume") / "root"
    trial_id, _ = sweep_failed(root)
    return root / "exp_failed", trial_id


def results_of(experiment: Path) -> list[dict[str, object]]:
    (trial_dir,) = [p for p in experiment.iterdir() if p.is_dir() and p.name.startswith("Counter_")]
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_resume_errored_from_its_checkpoint(
    failed: tuple[Path, str], tmp_path: Path, local_ray: None
) -> None:
    """Without a flag the errored trial is skipped (exit 1); --resume-errored runs it on from
    its checkpoint to TERMINATED (exit 0)."""
    experiment = copy_experiment(failed[0], tmp_path / "exp")
    address = ray.get_runtime_context().gcs_address

    skipped = run_json(
        "resume", str(experiment), "--trainable", TRAINABLE, "--address", address, code=1
    )
    assert skipped["errored"] == [failed[1]]
    assert skipped["statuses"] == {"ERROR": 1}

    doc = run_json(
        "resume",
        str(experiment),
        "--trainable",
        TRAINABLE,
        "--resume-errored",
        "--address",
        address,
    )
    assert doc["path"] == str(experiment)
    assert doc["statuses"] == {"TERMINATED": 1} and doc["errored"] == []
    assert doc["trials"] == [
        {"trial_id": failed[1], "status": "TERMINATED", "iterations": ITERATIONS}
    ]
    results = results_of(experiment)
    assert [r["training_iteration"] for r in results] == list(range(1, ITERATIONS + 1))
    # Restored from checkpoint_000001, so two iterations since the restore.
    assert results[-1]["iterations_since_restore"] == ITERATIONS - (FAIL_AT - 1)
    (row,) = run_json("ls", str(experiment))["trials"]
    assert (row["status"], row["num_checkpoints"]) == ("TERMINATED", ITERATIONS)


def test_restart_errored_from_scratch(
    failed: tuple[Path, str], tmp_path: Path, local_ray: None
) -> None:
    """--restart-errored runs the trial again from iteration 1; the table names the
    experiment and the statuses."""
    experiment = copy_experiment(failed[0], tmp_path / "exp")
    address = ray.get_runtime_context().gcs_address
    proc = run_cli(
        "resume",
        str(experiment),
        "--trainable",
        TRAINABLE,
        "--restart-errored",
        "--address",
        address,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"Resumed {experiment}" in proc.stdout
    assert "1: 1 TERMINATED" in proc.stdout
    results = results_of(experiment)
    assert [r["training_iteration"] for r in results] == list(range(1, ITERATIONS + 1))
    assert results[-1]["iterations_since_restore"] == ITERATIONS
    assert run_cli("verify", str(experiment)).returncode == 0


def test_restart_errored_with_unreachable_address_deletes_nothing(
    failed: tuple[Path, str], tmp_path: Path
) -> None:
    """--restart-errored with an --address nobody listens on fails (exit 2) and leaves every
    checkpoint and result of the errored trial in place."""
    experiment = copy_experiment(failed[0], tmp_path / "exp")
    files = {p: p.read_bytes() for p in experiment.rglob("*") if p.is_file()}
    assert any(p.parent.name.startswith("checkpoint_") for p in files)
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = run_cli(
        "resume", str(experiment), "--trainable", TRAINABLE, "--restart-errored",
        "--address", f"127.0.0.1:{port}", timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert {p: p.read_bytes() for p in experiment.rglob("*") if p.is_file()} == files


def test_resume_after_the_driver_was_killed(tmp_path: Path, local_ray: None) -> None:
    """A driver killed with SIGKILL leaves trials unfinished and its lease behind: ls shows
    the experiment interrupted, gc --dry-run lists the dead driver's lease without --force,
    and resume takes it over and runs every trial to the end from its checkpoints."""
    kill_driver_mid_sweep(tmp_path, signal.SIGKILL)
    experiment = tmp_path / "exp"
    listing = run_json("ls", str(experiment))
    assert listing["state"] == "interrupted"
    before = listing["trials"]
    assert len(before) == 3
    assert any(t["status"] in ("INTERRUPTED", "PENDING") for t in before), before

    dry = run_json("gc", str(experiment), "--dry-run")
    assert [m["stale"] for m in dry["markers"]] == [True]

    address = ray.get_runtime_context().gcs_address
    trainable = "fault._trainables:accumulate_fn"
    doc = run_json("resume", str(experiment), "--trainable", trainable, "--address", address)
    assert doc["statuses"] == {"TERMINATED": 3} and doc["errored"] == []
    assert [t["iterations"] for t in doc["trials"]] == [DRIVER_ITERATIONS] * 3
    resumed = [t for t in before if t["iterations"] > 0]
    assert resumed, "no trial had results when the driver was killed"
    assert run_cli("verify", str(experiment)).returncode == 0
    assert list(experiment.glob(".tune_ckpt_marker_*")) == []
