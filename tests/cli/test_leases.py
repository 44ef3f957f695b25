"""``tune-ckpt`` and driver leases: ``gc`` refuses only a live one (a dry run never
refuses), removes stale ones without ``--force``; ``ls`` tells running from interrupted.
Leases are written as a driver writes them, with the heartbeat age chosen by the test."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tune_ckpt.storage.lease import MARKER_PREFIX

from .conftest import (
    Experiments,
    assert_usage_error,
    copy_experiment,
    run_cli,
    run_json,
    table_row,
)
from .test_commands import plant_leftovers


def write_lease(experiment: Path, lease_id: str, age_s: float, timeout_s: float = 30) -> Path:
    """A lease of host ``node7``, pid 4242, last renewed ``age_s`` seconds ago."""
    now = time.time()
    path = experiment / f"{MARKER_PREFIX}{lease_id}"
    path.write_text(
        json.dumps(
            {
                "kind": "tune_ckpt_lease",
                "lease_id": lease_id,
                "host": "node7",
                "pid": 4242,
                "started": now - 100,
                "heartbeat": now - age_s,
                "timeout_s": timeout_s,
            }
        )
    )
    return path


def journal_trial_as_running(experiment: Path) -> None:
    """Append a RUNNING snapshot of the first trial, as a driver killed mid-trial leaves."""
    journal = experiment / "experiment_journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    running = dict(next(e for e in entries if e["kind"] == "trial"), status="RUNNING")
    with open(journal, "a") as f:
        f.write(json.dumps(running) + "\n")


def test_gc_refuses_a_live_lease_unless_forced(experiments: Experiments, tmp_path: Path) -> None:
    """A live lease: gc refuses with one line naming the holder and --force, changing
    nothing; gc --dry-run goes through and lists it as running; --force removes it."""
    root = copy_experiment(experiments.root, tmp_path / "root")
    _, trial_dir = next(iter(experiments.ok_trials.items()))
    leftovers = plant_leftovers(root / "exp_ok" / trial_dir)
    lease = write_lease(root / "exp_ok", "0123abcd", age_s=1)

    line = assert_usage_error(
        run_cli("gc", str(root)), str(root / "exp_ok"), "host node7, pid 4242", "--force"
    )
    assert "heartbeat 1." in line
    assert lease.exists() and all(p.exists() for p in leftovers)

    dry = run_json("gc", str(root / "exp_ok"), "--dry-run")
    assert [r["pid"] for r in dry["running"]] == [4242]
    assert dry["markers"] == []
    assert sorted(r["path"] for r in dry["removed"]) == sorted(str(p) for p in leftovers)
    table = run_cli("gc", str(root / "exp_ok"), "--dry-run")
    assert table.returncode == 0, table.stderr
    assert table_row(table.stdout, lease.name) == [
        "running: gc refuses without --force",
        str(lease),
    ]
    assert lease.exists() and all(p.exists() for p in leftovers)

    doc = run_json("gc", str(root), "--force")
    assert sorted(r["path"] for r in doc["removed"]) == sorted(str(p) for p in leftovers)
    assert [(m["path"], m["stale"]) for m in doc["markers"]] == [(str(lease), False)]
    assert not any(p.exists() for p in leftovers) and not lease.exists()
    again = run_json("gc", str(root))
    assert again["removed"] == [] and again["markers"] == []


def test_gc_removes_stale_leases_without_force(experiments: Experiments, tmp_path: Path) -> None:
    """A lease whose heartbeat is older than its timeout belongs to a dead driver: gc and
    gc --dry-run go through, and gc removes it; so does an earlier version's marker older
    than the default timeout."""
    experiment = copy_experiment(experiments.ok, tmp_path / "exp")
    stale = write_lease(experiment, "deadbeef", age_s=40, timeout_s=30)
    old = experiment / f"{MARKER_PREFIX}0ld"
    old.write_bytes(b"tune_ckpt")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))

    dry = run_json("gc", str(experiment), "--dry-run")
    assert sorted(m["path"] for m in dry["markers"]) == sorted([str(stale), str(old)])
    assert all(m["stale"] for m in dry["markers"]) and dry["running"] == []
    assert stale.exists() and old.exists()
    table = run_cli("gc", str(experiment))
    assert table.returncode == 0, table.stderr
    assert table_row(table.stdout, stale.name) == ["removed", str(stale)]
    assert "2 driver lease(s)" in table.stdout
    assert not stale.exists() and not old.exists()


def test_ls_tells_running_from_interrupted(experiments: Experiments, tmp_path: Path) -> None:
    """A live lease: running, the journal's RUNNING trial shown as such. A stale lease, or
    none with an unfinished trial: interrupted, the trial INTERRUPTED."""
    root = copy_experiment(experiments.root, tmp_path / "root")
    experiment = root / "exp_ok"
    journal_trial_as_running(experiment)
    lease = write_lease(experiment, "0123abcd", age_s=2)

    running = run_json("ls", str(experiment))
    assert running["state"] == "running"
    assert (running["lease"]["host"], running["lease"]["pid"]) == ("node7", 4242)
    assert running["statuses"] == {"RUNNING": 1, "TERMINATED": 1}
    summary = {e["name"]: e for e in run_json("ls", str(root))["experiments"]}
    assert summary["exp_ok"]["state"] == "running"
    assert summary["exp_failed"]["state"] == "finished"
    assert summary["exp_failed"]["lease"] is None

    lease.unlink()
    write_lease(experiment, "0123abcd", age_s=31, timeout_s=30)
    interrupted = run_json("ls", str(experiment))
    assert interrupted["state"] == "interrupted" and interrupted["lease"]["stale"] is True
    assert interrupted["statuses"] == {"INTERRUPTED": 1, "TERMINATED": 1}
    assert sorted(t["status"] for t in interrupted["trials"]) == ["INTERRUPTED", "TERMINATED"]
    table = run_cli("ls", str(root))
    assert table.returncode == 0, table.stderr
    cells = table_row(table.stdout, "exp_ok")
    assert cells[3] == "1 INTERRUPTED, 1 TERMINATED"
    assert cells[4].startswith("interrupted (driver on node7, pid 4242")

    (experiment / f"{MARKER_PREFIX}0123abcd").unlink()
    assert run_json("ls", str(experiment))["state"] == "interrupted"
    assert run_json("ls", str(experiments.ok))["state"] == "finished"
