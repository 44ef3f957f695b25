"""Damaged experiments through the installed ``tune-ckpt``: each command reports the damage
as a row or one ``tune-ckpt: error:`` line, never a traceback. A checkpoint the journal
records as committed whose manifest is gone is bad for ``verify`` and ``show``, and ``gc``
keeps its folder unless ``--force``; a checkpoint storage cannot read is "unreadable",
apart from "bad"."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tune_ckpt.storage.manifest import MANIFEST_NAME, METADATA_NAME

from .conftest import (
    ITERATIONS,
    Experiments,
    assert_usage_error,
    copy_experiment,
    run_cli,
    run_json,
    table_row,
)


def checkpoint(root: Path, experiments: Experiments, iteration: int) -> tuple[str, Path]:
    """(trial id, folder) of a checkpoint of exp_ok's first trial in the copy ``root``."""
    trial_id, trial_dir = next(iter(experiments.ok_trials.items()))
    return trial_id, root / "exp_ok" / trial_dir / f"checkpoint_{iteration:06d}"


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tune-ckpt: error")]
    assert len(errors) <= 1, proc.stderr


def test_committed_checkpoint_without_manifest(experiments: Experiments, tmp_path: Path) -> None:
    root = copy_experiment(experiments.root, tmp_path / "root")
    trial_id, lost = checkpoint(root, experiments, 2)
    (lost / MANIFEST_NAME).unlink()

    doc = run_json("verify", str(root), code=1)
    (bad,) = [c for c in doc["checkpoints"] if not c["ok"]]
    assert (bad["path"], bad["trial_id"], bad["status"]) == (str(lost), trial_id, "bad")
    assert bad["iteration"] == 2 and bad["problems"][0].startswith("manifest missing")
    assert (doc["bad"], doc["unreadable"]) == (1, 0)
    table = run_cli("verify", str(root / "exp_ok"))
    assert table.returncode == 1
    assert table_row(table.stdout, lost.name)[1].startswith("BAD: manifest missing")

    shown = run_json("show", str(root / "exp_ok" / trial_id))
    assert [c["iteration"] for c in shown["checkpoints"]] == list(range(1, ITERATIONS + 1))
    (missing,) = [c for c in shown["checkpoints"] if not c["verified"]]
    assert (missing["name"], missing["status"], missing["size"]) == (lost.name, "bad", None)
    assert missing["metrics_source"] == "journal"

    kept = run_json("gc", str(root))
    assert kept["kept"] == [
        {"experiment": str(root / "exp_ok"), "trial_id": trial_id, "path": str(lost)}
    ]
    assert kept["removed"] == [] and (lost / "state.json").exists()
    table = run_cli("gc", str(root / "exp_ok"), "--dry-run")
    assert table_row(table.stdout, lost.name)[0] == "kept: journal records it, manifest missing"
    forced = run_json("gc", str(root), "--force")
    assert [r["path"] for r in forced["removed"]] == [str(lost)] and not lost.exists()


def test_unreadable_checkpoint_is_not_bad(experiments: Experiments, tmp_path: Path) -> None:
    """A file storage cannot read (here a folder where the file should be): verify reports
    it unreadable, not bad, and exits 2 with one line; show marks it UNREADABLE."""
    root = copy_experiment(experiments.root, tmp_path / "root")
    trial_id, unreadable = checkpoint(root, experiments, 3)
    (unreadable / "state.json").unlink()
    (unreadable / "state.json").mkdir()

    proc = run_cli("verify", str(root), "--json")
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("tune-ckpt: error: 1 checkpoint(s) could not be read")
    doc = json.loads(proc.stdout)
    assert (doc["bad"], doc["unreadable"]) == (0, 1)
    (entry,) = [c for c in doc["checkpoints"] if not c["ok"]]
    assert (entry["path"], entry["status"]) == (str(unreadable), "unreadable")
    assert "is a directory" in entry["problems"][0]
    table = run_cli("verify", str(root))
    assert table.returncode == 2 and "0 bad, 1 unreadable" in table.stdout
    shown = run_cli("show", str(root / "exp_ok" / trial_id))
    assert shown.returncode == 0, shown.stderr
    assert "│ UNREADABLE: StorageError" in shown.stdout


def _torn(path: Path) -> None:
    """Cut the file in the middle of its last line, as a driver killed mid-append does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(data.splitlines()[-1]) // 2 - 1])


def _first(root: Path, experiments: Experiments) -> Path:
    return root / "exp_ok" / next(iter(experiments.ok_trials.values()))


DAMAGE: dict[str, Callable[[Path, Experiments], None]] = {
    "manifest": lambda root, exps: (
        checkpoint(root, exps, 2)[1].joinpath(MANIFEST_NAME).write_bytes(b'{"files": [')
    ),
    "metadata": lambda root, exps: (
        checkpoint(root, exps, 2)[1].joinpath(METADATA_NAME).write_bytes(b"{not json")
    ),
    "result.json": lambda root, exps: _torn(_first(root, exps) / "result.json"),
    "progress.csv": lambda root, exps: _torn(_first(root, exps) / "progress.csv"),
    "journal line": lambda root, exps: _torn(root / "exp_ok" / "experiment_journal.jsonl"),
    "journal header": lambda root, exps: (root / "exp_ok" / "experiment_journal.jsonl").write_bytes(
        b'{"kind": "experim\n'
        + (root / "exp_ok" / "experiment_journal.jsonl").read_bytes().split(b"\n", 1)[1]
    ),
}


@pytest.mark.parametrize("damaged", list(DAMAGE))
def test_every_command_reports_damage_without_a_traceback(
    damaged: str, experiments: Experiments, tmp_path: Path
) -> None:
    root = copy_experiment(experiments.root, tmp_path / "root")
    DAMAGE[damaged](root, experiments)
    trial_id = next(iter(experiments.ok_trials))
    commands = [
        ["ls", str(root)],
        ["ls", str(root / "exp_ok")],
        ["show", str(root / "exp_ok" / trial_id)],
        ["verify", str(root)],
        ["gc", str(root), "--dry-run"],
    ]
    for args in commands:
        for as_json in ([], ["--json"]):
            proc = run_cli(*args, *as_json)
            no_traceback(proc)
            if damaged == "journal header" and args != ["ls", str(root)]:
                # An experiment without its header cannot be read: one line, exit 2.
                assert_usage_error(proc, "journal without an experiment header")
            elif damaged in ("manifest", "metadata") and args[0] == "verify":
                # A manifest or metadata that does not parse makes that checkpoint bad.
                assert proc.returncode == 1 and "does not parse" in proc.stdout
            else:
                assert proc.returncode == 0, (args, proc.stderr)
    if damaged == "journal header":
        row = {e["name"]: e for e in run_json("ls", str(root))["experiments"]}["exp_ok"]
        assert "journal without an experiment header" in row["error"]
    if damaged == "result.json":
        proc = run_cli("show", str(root / "exp_ok" / trial_id), "--json")
        assert "result.json: skipping line 3" in proc.stderr
    shutil.rmtree(root)
