"""Experiments made by real sweeps, shared by a module's CLI tests, and the CLI runner.

Tests that change an experiment work on a copy (``copy_experiment``); the shared sweeps stay
as they were made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import air

from ._trainables import Counter

CLI = os.path.join(os.path.dirname(sys.executable), "tune-ckpt")
"""The installed console script (``[project.scripts]``), next to the venv's python."""

ITERATIONS = 3
LRS = (1.0, 2.0)
FAIL_AT = 2


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``tune-ckpt ARGS`` in a subprocess through the real entry point."""
    assert os.access(CLI, os.X_OK), f"{CLI} is not installed: pip install -e ."
    child_env = dict(os.environ if env is None else env)
    # pytest exports COLUMNS=80, which rich honours; without it, piped tables get the wide
    # page a user's pipe gets, so rows are not wrapped.
    child_env.pop("COLUMNS", None)
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
        check=False,
    )


def run_json(*args: str, env: dict[str, str] | None = None, code: int = 0) -> dict[str, Any]:
    """Run ``tune-ckpt ARGS --json``, check the exit status and parse stdout."""
    proc = run_cli(*args, "--json", env=env)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def assert_usage_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit status 2, nothing on stdout and one ``tune-ckpt: error:`` line on stderr holding
    every fragment; returns that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tune-ckpt: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def table_row(output: str, key: str) -> list[str]:
    """The cells of the one table row that contains ``key``."""
    rows = [line for line in output.splitlines() if key in line and "│" in line]
    assert len(rows) == 1, (key, output)
    return [cell.strip() for cell in rows[0].strip().strip("│").split("│")]


def copy_experiment(source: Path, destination: Path) -> Path:
    """A copy of an experiment folder (everything in it is relative, so the copy is whole)."""
    shutil.copytree(source, destination)
    return destination


@dataclass(frozen=True)
class Experiments:
    """A folder holding two finished experiments.

    Attributes:
        root: the folder.
        ok: ``exp_ok``: two TERMINATED trials (lr 1 and 2), a checkpoint every iteration,
            metric ``score`` (max).
        failed: ``exp_failed``: one trial that raised at iteration FAIL_AT and ended in ERROR
            with the checkpoint of iteration 1; no metric. A second attempt would not raise.
        ok_trials: trial id -> trial folder name in ``ok``, lr 1 first.
        failed_trial: (trial id, trial folder name) in ``failed``.
    """

    root: Path
    ok: Path
    failed: Path
    ok_trials: dict[str, str]
    failed_trial: tuple[str, str]


def trials_of(experiment: Path) -> list[dict[str, Any]]:
    """The latest journal snapshot of every trial, in journal order."""
    latest: dict[str, dict[str, Any]] = {}
    with open(experiment / "experiment_journal.jsonl") as f:
        for line in f:
            entry = json.loads(line)
            if entry["kind"] == "trial":
                latest[entry["trial_id"]] = entry
    return list(latest.values())


def sweep_ok(root: Path) -> None:
    """``exp_ok`` under ``root`` (see :class:`Experiments`)."""
    tune.Tuner(
        Counter,
        param_space={"lr": tune.grid_search(list(LRS))},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=air.RunConfig(
            storage_path=str(root),
            name="exp_ok",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=1),
        ),
    ).fit()


def sweep_failed(root: Path) -> tuple[str, str]:
    """``exp_failed`` under ``root`` (see :class:`Experiments`); its (trial id, folder)."""
    marker = root.parent / "failed_once"
    tune.Tuner(
        Counter,
        param_space={"lr": 0.5, "fail_at": FAIL_AT, "marker": str(marker)},
        run_config=air.RunConfig(
            storage_path=str(root),
            name="exp_failed",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=1),
        ),
    ).fit()
    (failed,) = trials_of(root / "exp_failed")
    assert failed["status"] == "ERROR" and marker.exists()
    return failed["trial_id"], failed["trial_dir"]


@pytest.fixture(scope="module")
def experiments(tmp_path_factory: pytest.TempPathFactory, module_local_ray: None) -> Experiments:
    """Two tiny sweeps, made once per module."""
    root = tmp_path_factory.mktemp("experiments") / "root"
    sweep_ok(root)
    failed = sweep_failed(root)
    ok = sorted(trials_of(root / "exp_ok"), key=lambda t: t["config"]["lr"])
    assert [t["status"] for t in ok] == ["TERMINATED", "TERMINATED"]
    return Experiments(
        root,
        root / "exp_ok",
        root / "exp_failed",
        {t["trial_id"]: t["trial_dir"] for t in ok},
        failed,
    )
