"""The driver's lease on an experiment, on a real local folder: taking it, refusing a live
one, taking a stale one over, the start race, renewal, release and the worker check."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tune_ckpt.errors import ExperimentLockedError, LeaseLostError
from tune_ckpt.storage import lease as lease_mod
from tune_ckpt.storage.location import StorageLocation


@pytest.fixture
def experiment(tmp_path: Path) -> StorageLocation:
    return StorageLocation.resolve(str(tmp_path))


def write_lease(
    folder: Path, lease_id: str, *, age_s: float, timeout_s: float = 2.0, started: float = 0.0
) -> Path:
    now = time.time()
    path = folder / f"{lease_mod.MARKER_PREFIX}{lease_id}"
    document = {
        "kind": "tune_ckpt_lease",
        "lease_id": lease_id,
        "host": "elsewhere",
        "pid": 4242,
        "started": started or now - age_s,
        "heartbeat": now - age_s,
        "timeout_s": timeout_s,
    }
    path.write_text(json.dumps(document))
    return path


def test_acquire_writes_a_lease_and_release_removes_it(
    experiment: StorageLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lease_mod.TIMEOUT_ENV, "0.6")
    lease = lease_mod.acquire(experiment)
    try:
        marker = tmp_path / lease.name
        document = json.loads(marker.read_text())
        assert document["host"] == socket.gethostname() and document["pid"] == os.getpid()
        assert document["timeout_s"] == 0.6 and lease.name.endswith(document["lease_id"])
        first = document["heartbeat"]
        # Renewed every timeout / 6 = 0.1 s.
        deadline = time.monotonic() + 5
        while json.loads(marker.read_text())["heartbeat"] == first:
            assert time.monotonic() < deadline, "the heartbeat was not renewed"
            time.sleep(0.02)
        (info,) = lease_mod.read_leases(experiment)
        assert not info.is_stale()
    finally:
        lease.release()
    assert list(tmp_path.iterdir()) == []


def test_live_lease_refuses_naming_its_holder(experiment: StorageLocation, tmp_path: Path) -> None:
    write_lease(tmp_path, "a" * 32, age_s=0.1, timeout_s=30)
    with pytest.raises(ExperimentLockedError, match="host elsewhere, pid 4242"):
        lease_mod.acquire(experiment)
    with pytest.raises(ExperimentLockedError, match="pid 4242"):
        lease_mod.check_free(experiment)
    assert [p.name for p in tmp_path.iterdir()] == [f"{lease_mod.MARKER_PREFIX}{'a' * 32}"]


def test_stale_lease_is_taken_over_with_an_info_line(
    experiment: StorageLocation, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale = write_lease(tmp_path, "b" * 32, age_s=5, timeout_s=2)
    lease_mod.check_free(experiment)  # a stale lease does not lock
    with caplog.at_level(logging.INFO, logger="tune_ckpt.storage.lease"):
        lease = lease_mod.acquire(experiment)
    try:
        assert not stale.exists()
        (line,) = [r.getMessage() for r in caplog.records]
        assert "taking over the stale lease" in line and "pid 4242" in line
        assert [i.name for i in lease_mod.read_leases(experiment)] == [lease.name]
    finally:
        lease.release()


def test_old_marker_judged_by_its_modification_time(
    experiment: StorageLocation, tmp_path: Path
) -> None:
    """A marker of an earlier version (plain contents) is live while younger than the
    default timeout, stale after."""
    old = tmp_path / f"{lease_mod.MARKER_PREFIX}0123abcd"
    old.write_bytes(b"tune_ckpt")
    (info,) = lease_mod.read_leases(experiment)
    assert info.host is None and not info.is_stale()
    assert info.timeout_s == lease_mod.DEFAULT_TIMEOUT_S
    with pytest.raises(ExperimentLockedError, match="earlier tune_ckpt version"):
        lease_mod.acquire(experiment)
    long_ago = time.time() - lease_mod.DEFAULT_TIMEOUT_S - 5
    os.utime(old, (long_ago, long_ago))
    (info,) = lease_mod.read_leases(experiment)
    assert info.is_stale()
    lease_mod.acquire(experiment).release()
    assert list(tmp_path.iterdir()) == []


def test_simultaneous_start_the_later_backs_off(
    experiment: StorageLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two drivers that both saw no lease both write theirs; the one that started later
    removes its own and is refused, the earlier one keeps running."""
    # The rival's lease appears between our look and our write: written by the listing.
    rival = f"{lease_mod.MARKER_PREFIX}{'c' * 32}"
    real_read = lease_mod.read_leases
    calls = []

    def read_then_rival_writes(location: StorageLocation) -> list[lease_mod.LeaseInfo]:
        found = real_read(location)
        calls.append(len(found))
        if len(calls) == 1:
            write_lease(tmp_path, "c" * 32, age_s=0.0, timeout_s=30, started=time.time() - 1)
        return found

    monkeypatch.setattr(lease_mod, "read_leases", read_then_rival_writes)
    with pytest.raises(ExperimentLockedError, match="pid 4242"):
        lease_mod.acquire(experiment)
    assert [p.name for p in tmp_path.iterdir()] == [rival]


def test_marker_names_exclude_temporary_siblings() -> None:
    assert lease_mod.is_marker_name(f"{lease_mod.MARKER_PREFIX}abc123")
    assert not lease_mod.is_marker_name(f"{lease_mod.MARKER_PREFIX}abc123.tmp-77")
    assert not lease_mod.is_marker_name(lease_mod.MARKER_PREFIX)
    assert not lease_mod.is_marker_name("experiment_journal.jsonl")


def test_require_refuses_once_the_marker_is_gone(
    experiment: StorageLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lease_mod.TIMEOUT_ENV, "30")
    lease = lease_mod.acquire(experiment)
    lease_mod.require(experiment, lease.name)
    lease.release()
    with pytest.raises(LeaseLostError, match=lease.name):
        lease_mod.require(experiment, lease.name)
    lease_mod.require(experiment, "-")  # validate_save_restore's workers hold no lease


def test_renewal_stops_when_the_lease_was_taken_over(
    experiment: StorageLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver judged dead (paused past its timeout) must not revive its removed lease."""
    monkeypatch.setenv(lease_mod.TIMEOUT_ENV, "0.3")
    lease = lease_mod.acquire(experiment)
    (tmp_path / lease.name).unlink()
    lease._thread.join(timeout=5)
    assert not lease._thread.is_alive()
    assert not (tmp_path / lease.name).exists()
    lease.release()


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "inf", "nan"])
def test_bad_timeout_setting(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lease_mod.TIMEOUT_ENV, raw)
    with pytest.raises(ValueError, match=f"{lease_mod.TIMEOUT_ENV}={raw!r} is invalid"):
        lease_mod.lease_timeout_s()


def test_on_its_own_host_a_lease_of_a_gone_process_is_stale_at_once(
    experiment: StorageLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen from the driver's host, a fresh lease whose process exited is dead: a restore
    right after a SIGKILL on the same machine need not wait for the timeout."""
    monkeypatch.setenv(lease_mod.TIMEOUT_ENV, "60")
    lease = lease_mod.acquire(experiment)
    lease._stop.set()  # the "driver" dies: no more renewals, its lease stays behind
    lease._thread.join()
    (mine,) = lease_mod.read_leases(experiment)
    assert mine.pid == os.getpid() and not mine.is_stale()  # this process is alive

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    document = json.loads((tmp_path / lease.name).read_text())
    elsewhere = {**document, "pid": gone.pid, "host": "elsewhere"}
    (tmp_path / lease.name).write_text(json.dumps(elsewhere))
    assert not lease_mod.read_leases(experiment)[0].is_stale()  # another host: wait
    (tmp_path / lease.name).write_text(json.dumps({**document, "pid": gone.pid}))
    (dead,) = lease_mod.read_leases(experiment)
    assert dead.age_s() < 60 and dead.is_stale()
    lease_mod.acquire(experiment).release()
    assert list(tmp_path.iterdir()) == []
