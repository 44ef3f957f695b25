"""``tune-ckpt ls``, ``show``, ``verify`` and ``gc`` on local experiments made by real
sweeps, and the one-line errors of bad arguments, all through the installed entry point."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tune_ckpt.storage.staging import TMP_PREFIX

from .conftest import (
    FAIL_AT,
    ITERATIONS,
    LRS,
    Experiments,
    assert_usage_error,
    copy_experiment,
    run_cli,
    run_json,
    table_row,
)


def state_size(trial: Path, iteration: int) -> int:
    return os.path.getsize(trial / f"checkpoint_{iteration:06d}" / "state.json")


# -- ls ------------------------------------------------------------------------------------


def test_ls_folder_of_experiments(experiments: Experiments) -> None:
    """On a folder, ls lists each experiment with its trainable, trial count and statuses."""
    doc = run_json("ls", str(experiments.root))
    assert doc["kind"] == "experiments"
    assert doc["path"] == str(experiments.root)
    rows = {e["name"]: e for e in doc["experiments"]}
    assert sorted(rows) == ["exp_failed", "exp_ok"]
    assert rows["exp_ok"]["trainable"] == "Counter"
    assert rows["exp_ok"]["num_trials"] == 2
    assert rows["exp_ok"]["statuses"] == {"TERMINATED": 2}
    assert rows["exp_failed"]["statuses"] == {"ERROR": 1}
    assert rows["exp_ok"]["path"] == str(experiments.ok)
    assert isinstance(rows["exp_ok"]["created"], float)

    table = run_cli("ls", str(experiments.root))
    assert table.returncode == 0, table.stderr
    assert table_row(table.stdout, "exp_ok")[:4] == ["exp_ok", "Counter", "2", "2 TERMINATED"]
    assert table_row(table.stdout, "exp_failed")[:4] == ["exp_failed", "Counter", "1", "1 ERROR"]


def test_ls_experiment(experiments: Experiments) -> None:
    """On an experiment, ls lists each trial: status, iterations, best score, checkpoints on
    storage and their total size, and goodput: a trial that never failed lost nothing and
    waited for nothing, but its saves took time; the sweep's totals sum the trials'."""
    doc = run_json("ls", str(experiments.ok))
    saving = 0.0
    assert doc["kind"] == "experiment"
    assert (doc["trainable"], doc["metric"], doc["mode"]) == ("Counter", "score", "max")
    rows = {t["trial_id"]: t for t in doc["trials"]}
    assert set(rows) == set(experiments.ok_trials)
    for (trial_id, trial_dir), lr in zip(experiments.ok_trials.items(), LRS, strict=True):
        row = rows[trial_id]
        folder = experiments.ok / trial_dir
        size = sum(state_size(folder, i) for i in range(1, ITERATIONS + 1))
        assert (row.pop("time_lost_s"), row.pop("time_waiting_s")) == (0, 0)
        saving += row.pop("time_checkpointing_s")
        assert 0 < row.pop("goodput") < 1
        assert row == {
            "trial_id": trial_id,
            "trial_dir": trial_dir,
            "status": "TERMINATED",
            "iterations": ITERATIONS,
            "best_metric": ITERATIONS * lr,
            "num_checkpoints": ITERATIONS,
            "checkpoint_bytes": size,
        }
    assert saving > 0
    assert doc["sweep_goodput"]["time_checkpointing_s"] == pytest.approx(saving)
    assert doc["sweep_goodput"]["time_lost_s"] == 0

    table = run_cli("ls", str(experiments.ok))
    assert table.returncode == 0, table.stderr
    assert "best score (max)" in table.stdout
    for trial_id, lr in zip(experiments.ok_trials, LRS, strict=True):
        cells = table_row(table.stdout, trial_id)
        assert cells[:5] == [trial_id, "TERMINATED", "3", f"{ITERATIONS * lr:g}", "3"]
        assert cells[5].endswith(" B")
        assert cells[6].endswith("%")
    assert "goodput " in table.stdout and " s checkpointing" in table.stdout


def test_ls_experiment_without_metric(experiments: Experiments) -> None:
    """Without a metric the best-metric column is absent (null in JSON); an errored trial
    shows the iterations it reached and the checkpoint it left."""
    trial_id, trial_dir = experiments.failed_trial
    (row,) = run_json("ls", str(experiments.failed))["trials"]
    assert row["status"] == "ERROR"
    assert row["iterations"] == FAIL_AT - 1
    assert row["best_metric"] is None
    assert row["num_checkpoints"] == 1
    assert row["checkpoint_bytes"] == state_size(experiments.failed / trial_dir, 1)

    table = run_cli("ls", str(experiments.failed))
    assert "best" not in table.stdout
    assert table_row(table.stdout, trial_id)[:4] == [trial_id, "ERROR", "1", "1"]


# -- show ----------------------------------------------------------------------------------


def test_show_trial_by_id_and_by_folder(experiments: Experiments) -> None:
    """show names the trial by id or folder; it reports config, status, last result and each
    checkpoint's iteration, metrics (from the journal), size and verification."""
    trial_id, trial_dir = list(experiments.ok_trials.items())[1]
    lr = LRS[1]
    by_id = run_json("show", str(experiments.ok / trial_id))
    by_folder = run_json("show", str(experiments.ok / trial_dir))
    assert by_id == by_folder
    doc = by_id
    assert (doc["trial_id"], doc["trial_dir"], doc["status"]) == (trial_id, trial_dir, "TERMINATED")
    assert doc["config"] == {"lr": lr}
    assert (doc["num_failures"], doc["num_preemptions"], doc["error"]) == (0, 0, None)
    assert (doc["time_lost_s"], doc["time_waiting_s"]) == (0, 0)
    assert doc["time_checkpointing_s"] > 0 and 0 < doc["goodput"] < 1
    assert doc["last_result"]["training_iteration"] == ITERATIONS
    assert doc["last_result"]["score"] == ITERATIONS * lr
    assert doc["path"] == str(experiments.ok / trial_dir)
    folder = experiments.ok / trial_dir
    assert [c["iteration"] for c in doc["checkpoints"]] == [1, 2, 3]
    for ckpt in doc["checkpoints"]:
        i = ckpt["iteration"]
        assert ckpt["name"] == f"checkpoint_{i:06d}"
        assert ckpt["path"] == str(folder / ckpt["name"])
        assert ckpt["metrics"]["score"] == i * lr
        assert ckpt["metrics"]["nested"] == {"half": i / 2}
        assert ckpt["metrics_source"] == "journal"
        assert ckpt["size"] == state_size(folder, i)
        assert (ckpt["verified"], ckpt["problems"]) == (True, [])

    table = run_cli("show", str(experiments.ok / trial_dir))
    assert table.returncode == 0, table.stderr
    assert f"Trial {trial_id}" in table.stdout
    assert table_row(table.stdout, "checkpoint_000002")[:3] == ["checkpoint_000002", "2", "4"]
    assert table_row(table.stdout, "checkpoint_000002")[-1] == "ok"
    assert "nested/half=1, score=4" in table.stdout
    assert "TERMINATED" in table.stdout


def test_show_errored_trial(experiments: Experiments) -> None:
    """An errored trial shows its failure count and the exception line of its error."""
    trial_id, _ = experiments.failed_trial
    doc = run_json("show", str(experiments.failed / trial_id))
    assert doc["status"] == "ERROR"
    assert doc["num_failures"] == 1
    assert doc["error"] == f"RuntimeError: injected failure at iteration {FAIL_AT}"
    assert doc["traceback"].rstrip().endswith(doc["error"])
    assert "in step" in doc["traceback"]
    assert [c["iteration"] for c in doc["checkpoints"]] == [1]
    table = run_cli("show", str(experiments.failed / trial_id))
    assert f"RuntimeError: injected failure at iteration {FAIL_AT}" in table.stdout


def test_show_takes_metrics_from_results_for_checkpoints_the_journal_missed(
    experiments: Experiments, tmp_path: Path
) -> None:
    """A checkpoint the journal never recorded (a driver killed after the commit) gets the
    metrics of its iteration from result.json."""
    experiment = copy_experiment(experiments.ok, tmp_path / "exp")
    journal = experiment / "experiment_journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    for entry in entries:
        if entry["kind"] == "trial":
            entry["checkpoints"] = []
    journal.write_text("".join(json.dumps(e) + "\n" for e in entries))
    trial_id = list(experiments.ok_trials)[1]
    doc = run_json("show", str(experiment / trial_id))
    assert [c["metrics_source"] for c in doc["checkpoints"]] == ["results"] * 3
    assert [c["metrics"]["score"] for c in doc["checkpoints"]] == [2.0, 4.0, 6.0]
    assert all(c["verified"] for c in doc["checkpoints"])


# -- verify --------------------------------------------------------------------------------


def test_verify_clean_then_truncated(experiments: Experiments, tmp_path: Path) -> None:
    """verify passes a clean folder of experiments; after one checkpoint file is truncated
    on disk it exits 1 and names that checkpoint and the problem."""
    root = copy_experiment(experiments.root, tmp_path / "root")
    total = 2 * ITERATIONS + (FAIL_AT - 1)
    clean = run_json("verify", str(root))
    assert (clean["verified"], clean["bad"]) == (total, 0)
    assert all(c["ok"] for c in clean["checkpoints"])
    table = run_cli("verify", str(root))
    assert table.returncode == 0
    assert f"{total} verified, 0 bad" in table.stdout

    trial_id, trial_dir = next(iter(experiments.ok_trials.items()))
    damaged = root / "exp_ok" / trial_dir / "checkpoint_000002"
    with open(damaged / "state.json", "r+b") as f:
        f.truncate(10)

    doc = run_json("verify", str(root), code=1)
    assert (doc["verified"], doc["bad"]) == (total - 1, 1)
    (bad,) = [c for c in doc["checkpoints"] if not c["ok"]]
    assert bad["path"] == str(damaged)
    assert bad["trial_id"] == trial_id
    size = state_size(experiments.ok / trial_dir, 2)
    assert bad["problems"] == [f"state.json: 10 bytes, manifest says {size}"]
    table = run_cli("verify", str(root / "exp_ok"))
    assert table.returncode == 1
    assert str(damaged) in table.stdout
    assert "state.json: 10 bytes" in table.stdout
    assert f"{2 * ITERATIONS - 1} verified, 1 bad" in table.stdout


# -- gc ------------------------------------------------------------------------------------


def plant_leftovers(trial: Path) -> list[Path]:
    """What interrupted writes leave: a checkpoint folder without a manifest and a
    temporary folder."""
    leftovers = [trial / "checkpoint_000099", trial / f"{TMP_PREFIX}000004_deadbeef"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "model.bin").write_bytes(b"half-written")
    return leftovers


def test_gc_dry_run_then_gc(experiments: Experiments, tmp_path: Path) -> None:
    """gc --dry-run lists the leftovers and leaves them; gc removes them and nothing else."""
    experiment = copy_experiment(experiments.ok, tmp_path / "exp")
    trial_id, trial_dir = next(iter(experiments.ok_trials.items()))
    leftovers = plant_leftovers(experiment / trial_dir)

    dry = run_json("gc", str(experiment), "--dry-run")
    assert dry["dry_run"] is True
    assert sorted(r["path"] for r in dry["removed"]) == sorted(str(p) for p in leftovers)
    assert {r["trial_id"] for r in dry["removed"]} == {trial_id}
    assert dry["published"] == []
    table = run_cli("gc", str(experiment), "--dry-run")
    assert table.returncode == 0
    for path in leftovers:
        assert table_row(table.stdout, path.name) == ["would remove", str(path)]
        assert (path / "model.bin").exists()
    assert "nothing changed" in table.stdout

    table = run_cli("gc", str(experiment))
    assert table.returncode == 0, table.stderr
    for path in leftovers:
        assert table_row(table.stdout, path.name) == ["removed", str(path)]
        assert not path.exists()
    assert sorted(p.name for p in (experiment / trial_dir).glob("checkpoint_*")) == [
        f"checkpoint_{i:06d}" for i in range(1, ITERATIONS + 1)
    ]
    assert run_json("gc", str(experiment))["removed"] == []


# -- bad arguments -------------------------------------------------------------------------


def test_path_without_experiment(tmp_path: Path) -> None:
    """A folder holding no experiment, or no folder at all: exit 2 with one line."""
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    empty = str(tmp_path / "empty")
    for args in (["ls", empty], ["gc", empty], ["resume", empty, "--trainable", "m:f"]):
        assert_usage_error(run_cli(*args), f"{empty} holds no tune_ckpt experiment")
    assert_usage_error(run_cli("ls", str(tmp_path / "missing")), str(tmp_path / "missing"))
    assert_usage_error(run_cli("show", str(tmp_path / "empty" / "sub")), "no tune_ckpt experiment")


def test_unknown_trial(experiments: Experiments) -> None:
    """show of a trial the experiment does not have: one line naming the trial ids."""
    line = assert_usage_error(run_cli("show", str(experiments.ok / "nope")), "'nope'")
    for trial_id in experiments.ok_trials:
        assert trial_id in line


def test_resume_with_bad_trainable(experiments: Experiments) -> None:
    """A trainable that is not module:name, cannot be imported or found, or has another name
    than the journal's: exit 2 with one line, before Ray starts."""
    path = str(experiments.failed)
    cases = {
        "Counter": "module:name",
        "no_such_module_xyz:Counter": "No module named 'no_such_module_xyz'",
        "cli._trainables:Missing": "has no attribute 'Missing'",
        "cli._trainables:other_fn": "run with trainable 'Counter', not 'other_fn'",
    }
    for spec, message in cases.items():
        proc = run_cli("resume", path, "--trainable", spec, "--address", "127.0.0.1:1")
        assert_usage_error(proc, message)


def test_resume_with_unreachable_address(experiments: Experiments) -> None:
    """An --address nobody listens on: exit 2 with one line in seconds, not Ray's minutes of
    retries, and the experiment is left as it was."""
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = run_json("ls", str(experiments.failed))
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        proc = run_cli(
            "resume", str(experiments.failed), "--trainable", "cli._trainables:Counter",
            "--address", address, timeout=60,
        )  # fmt: skip
        assert_usage_error(proc, f"cannot reach Ray at --address {address}")
    assert run_json("ls", str(experiments.failed)) == before


def test_bad_arguments() -> None:
    """argparse errors are one line too: no subcommand, missing PATH, unknown option,
    conflicting flags."""
    assert_usage_error(run_cli(), "required: COMMAND")
    assert_usage_error(run_cli("ls"), "required: PATH")
    assert_usage_error(run_cli("ls", ".", "--bogus"), "--bogus")
    assert_usage_error(
        run_cli("resume", ".", "--trainable", "m:f", "--resume-errored", "--restart-errored"),
        "not allowed with",
    )


def test_help_documents_the_json_keys() -> None:
    """--help of the command and of a subcommand describe the --json documents."""
    top = run_cli("--help")
    assert top.returncode == 0
    for command in ("ls", "show", "verify", "gc", "resume"):
        assert command in top.stdout
    ls_help = run_cli("ls", "--help")
    assert ls_help.returncode == 0
    for key in ("best_metric", "num_checkpoints", "checkpoint_bytes", "statuses"):
        assert key in ls_help.stdout
