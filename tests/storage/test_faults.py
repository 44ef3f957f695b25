"""The storage contract when storage fails: through the fault-injecting filesystem, on a
local folder and on S3 (moto).

Transient faults are retried away with identical results; permanent ones raise at once; a
commit cut short by a full disk leaves nothing committed; an outage raises a StorageError
(never "no checkpoint"), and a short outage within the retry budget is ridden out.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
import ray
from faultfs import FaultFS
from s3server import BUCKET, MotoServer

from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
)
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME, METADATA_NAME
from tune_ckpt.storage.packing import PackedCheckpoint

from .conftest import MakeDir, Tree

# Retries in milliseconds, so a test rides out dozens of faults in well under a second.
FAST = StorageRetry(max_elapsed_s=5, initial_s=0.001, max_s=0.01)
TRANSIENT_KINDS = ("slowdown", "http503", "http500", "timeout", "reset")


@dataclass
class Faulty:
    """A storage root reached through a FaultFS over a real backend."""

    name: str
    faults: FaultFS
    base: pafs.FileSystem
    root: str

    def location(self, retry: StorageRetry = FAST, prefix: str = "") -> StorageLocation:
        return StorageLocation.resolve(f"{self.root}{prefix}", self.faults.fs, retry=retry)

    def store(self, retry: StorageRetry = FAST, prefix: str = "") -> CheckpointStore:
        return CheckpointStore(self.location(retry, prefix))

    def put(self, relative: str, data: bytes) -> None:
        """Write straight to the backend, past the faults (to damage a checkpoint)."""
        path = f"{self.root}/{relative}"
        self.base.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.base.open_output_stream(path) as out:
            out.write(data)


@pytest.fixture(params=["local", "s3"])
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Faulty:
    if request.param == "local":
        base: pafs.FileSystem = pafs.LocalFileSystem()
        root = str(tmp_path / "storage")
        base.create_dir(root)
    else:
        server: MotoServer = request.getfixturevalue("moto_server")
        base = server.filesystem()
        root = f"{BUCKET}/faults-{uuid.uuid4().hex[:12]}"
    return Faulty(request.param, FaultFS(base, tmp_path / "faults.json"), base, root)


def checkpoint_tree(iteration: int) -> Tree:
    return {
        "model.bin": os.urandom(32 * 1024),
        "config.json": json.dumps({"it": iteration}).encode(),
        "empty.dat": b"",
        "sub/dir/state.pkl": os.urandom(1024),
    }


def exercise(store: CheckpointStore, trees: list[Tree], make_dir: MakeDir) -> dict[str, Any]:
    """Every storage operation a sweep makes, and what each one returned."""
    loc = store.location
    committed = []
    for iteration, tree in enumerate(trees, 1):
        relative = f"trial_0/checkpoint_{iteration:06d}"
        if iteration == len(trees):  # the driver's path for checkpoints from the object store
            packed = PackedCheckpoint.from_local_dir(str(make_dir(tree)), {"it": iteration})
            committed.append(store.commit_packed(relative, packed, iteration))
        else:
            src = make_dir(tree)
            committed.append(store.commit_local_dir(relative, str(src), iteration, b'{"m": 1}'))
    for line in range(5):
        loc.append_bytes("trial_0/result.json", f'{{"line": {line}}}\n'.encode())
    loc.write_bytes("trial_0/params.json", b'{"lr": 0.1}')
    listed = store.list_committed("trial_0")
    verified = [store.verify(relative).manifest.files for relative in listed]
    verified_packed = store.read_verified_packed(listed[-1])
    assert verified_packed is not None
    newest = store.newest_verified(listed[::-1])
    assert newest is not None
    # A Checkpoint handle on a committed folder (what a worker restores and a Result
    # holds) makes its calls through the location too: retried, not failed.
    handle = Checkpoint.at(loc.child(listed[-1]))
    handle_packed = handle.pack()
    store.delete(listed[0])
    return {
        "handle_is_dict": handle.is_dict,
        "handle_metadata": handle.get_metadata(),
        "handle_files": {path: bytes(handle_packed.file(path)) for path in handle_packed.paths},
        "files": [c.manifest.files for c in committed],
        "listed": listed,
        "verified": verified,
        "packed": {path: bytes(verified_packed.file(path)) for path in verified_packed.paths},
        "metadata": verified_packed.metadata,
        "newest": newest.path,
        "results": loc.read_bytes("trial_0/result.json"),
        "params": loc.read_bytes("trial_0/params.json"),
        "after_delete": store.list_committed("trial_0"),
        "swept": store.sweep("trial_0"),
    }


def test_transient_faults_give_identical_results(faulty: Faulty, make_dir: MakeDir) -> None:
    """A quarter of all calls failing with throttling, 5xx, timeouts and resets (seeded):
    every operation succeeds and returns exactly what it returns without faults."""
    trees = [checkpoint_tree(i) for i in (1, 2, 3)]
    clean = exercise(faulty.store(prefix="/clean"), trees, make_dir)
    faulty.faults.set(fraction=0.25, seed=7, kinds=TRANSIENT_KINDS)
    with_faults = exercise(faulty.store(prefix="/faulty"), trees, make_dir)
    assert with_faults == clean
    injected = faulty.faults.injected()
    assert len(injected) >= 20
    assert {f["kind"] for f in injected} == set(TRANSIENT_KINDS)
    # The draws hang on the paths, which differ from run to run: writes and reads are hit
    # every time; which other calls are varies.
    methods = {f["method"] for f in injected}
    assert {"open_output_stream", "open_input_stream"} <= methods and len(methods) >= 3


@pytest.mark.parametrize(
    ("kind", "error"), [("permission", StoragePermissionError), ("enospc", StorageFullError)]
)
def test_permanent_faults_raise_at_once(
    faulty: Faulty, make_dir: MakeDir, kind: str, error: type[StorageError]
) -> None:
    """A permission error or a full disk is not retried: one attempt, then the error (with a
    budget that would allow minutes of retries)."""
    store = faulty.store(StorageRetry(max_elapsed_s=300))
    store.commit_local_dir("trial_0/checkpoint_000001", str(make_dir(checkpoint_tree(1))), 1)
    faulty.faults.fail(methods=["open_output_stream"], kinds=[kind])
    started = time.monotonic()
    with pytest.raises(error):
        store.commit_local_dir("trial_0/checkpoint_000002", str(make_dir(checkpoint_tree(2))), 2)
    assert len(faulty.faults.injected()) == 1
    faulty.faults.fail(methods=["open_input_stream"], kinds=[kind])
    with pytest.raises(error):  # unreadable is not corrupt: never skipped as bad
        store.newest_verified(["trial_0/checkpoint_000001"])
    with pytest.raises(error):
        store.read_verified_packed("trial_0/checkpoint_000001")
    assert len(faulty.faults.injected()) == 3
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("where", ["third file", "manifest"])
def test_full_disk_mid_commit_leaves_nothing_committed(
    faulty: Faulty, make_dir: MakeDir, where: str
) -> None:
    """ENOSPC on the third file or on the manifest: the new checkpoint is not committed, the
    previous one still verifies and restores, and a sweep removes the leftovers."""
    store = faulty.store()
    first = checkpoint_tree(1)
    store.commit_local_dir("trial_0/checkpoint_000001", str(make_dir(first)), 1)
    target = "trial_0/checkpoint_000002"
    if where == "third file":
        faulty.faults.fail(["open_output_stream"], ["enospc"], f"{target}/", skip=2, times=1)
    else:
        faulty.faults.fail(["open_output_stream"], ["enospc"], f"{target}/{MANIFEST_NAME}")
    with pytest.raises(StorageFullError):
        store.commit_local_dir(target, str(make_dir(checkpoint_tree(2))), 2)
    faulty.faults.off()
    assert store.list_committed("trial_0") == ["trial_0/checkpoint_000001"]
    with pytest.raises(CheckpointNotFoundError):
        store.read(target)
    newest = store.newest_verified([target, "trial_0/checkpoint_000001"])
    assert newest is not None and newest.path == "trial_0/checkpoint_000001"
    packed = store.read_verified_packed("trial_0/checkpoint_000001")
    assert packed is not None
    assert {path: bytes(packed.file(path)) for path in packed.paths} == first
    assert store.sweep("trial_0") == [target]
    assert store.location.list_dir(target) == []


@pytest.mark.parametrize("damaged", [MANIFEST_NAME, METADATA_NAME])
def test_unparsable_manifest_or_metadata_is_skipped(
    faulty: Faulty, make_dir: MakeDir, damaged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A manifest or .metadata.json that does not parse makes that checkpoint bad: verify
    says why, and both restore paths fall back to the older checkpoint with a warning."""
    store = faulty.store()
    for iteration in (1, 2):
        src = make_dir(checkpoint_tree(iteration))
        store.commit_local_dir(f"trial_0/checkpoint_{iteration:06d}", str(src), iteration, b"{}")
    newest = "trial_0/checkpoint_000002"
    faulty.put(f"{newest}/{damaged}", b'{"torn": ')
    with pytest.raises(CorruptCheckpointError) as info:
        store.verify(newest)
    assert info.value.problems[0].startswith(f"{damaged} does not parse")
    caplog.set_level(logging.WARNING, logger="tune_ckpt.storage.reading")
    chosen = store.newest_verified([newest, "trial_0/checkpoint_000001"])
    assert chosen is not None and chosen.path == "trial_0/checkpoint_000001"
    assert store.read_verified_packed(newest) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(newest in w and f"{damaged} does not parse" in w for w in warnings)


def test_outage_past_the_budget_raises_instead_of_skipping(
    faulty: Faulty, make_dir: MakeDir, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage down for longer than max_elapsed_s: every restore path raises the storage
    error; none of them reports 'no checkpoint' (None) or a corrupt checkpoint."""
    short = StorageRetry(max_elapsed_s=0.2, initial_s=0.01, max_s=0.05)
    store = faulty.store(short)
    store.commit_local_dir("trial_0/checkpoint_000001", str(make_dir(checkpoint_tree(1))), 1)
    faulty.faults.down(60)
    caplog.set_level(logging.INFO, logger="tune_ckpt.storage.retry")
    for operation in (
        lambda: store.newest_verified(["trial_0/checkpoint_000001"]),
        lambda: store.read_verified_packed("trial_0/checkpoint_000001"),
        lambda: store.verify("trial_0/checkpoint_000001"),
        lambda: store.list_committed("trial_0"),
    ):
        with pytest.raises(StorageUnavailableError) as info:
            operation()
        assert "gave up after" in info.value.cause
    gave_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(gave_up) == 4
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    faulty.faults.up()
    assert store.read_verified_packed("trial_0/checkpoint_000001") is not None


def test_short_outage_within_the_budget_is_ridden_out(faulty: Faulty, make_dir: MakeDir) -> None:
    """Storage down for 1 s with a 5 s budget: the restore reads succeed once it is back."""
    store = faulty.store(StorageRetry(max_elapsed_s=5, initial_s=0.05, max_s=0.2))
    first = checkpoint_tree(1)
    store.commit_local_dir("trial_0/checkpoint_000001", str(make_dir(first)), 1)
    faulty.faults.down(1.0)
    started = time.monotonic()
    packed = store.read_verified_packed("trial_0/checkpoint_000001")
    assert 0.9 < time.monotonic() - started < 4
    assert packed is not None
    assert {path: bytes(packed.file(path)) for path in packed.paths} == first
    assert faulty.faults.injected(kind="down")


@ray.remote
class _Reader:
    def __init__(self, location: StorageLocation) -> None:
        self.location = location

    def read(self, relative: str) -> tuple[int, bytes | str]:
        try:
            return os.getpid(), self.location.read_bytes(relative)
        except StorageError as exc:
            return os.getpid(), type(exc).__name__


def test_faults_reach_ray_workers_and_switch_while_they_run(
    local_ray: None, tmp_path: Path
) -> None:
    """The faulty filesystem travels to a worker inside a StorageLocation; the test process
    takes storage down and up again while the worker runs, and sees the worker's faults."""
    faults = FaultFS(pafs.LocalFileSystem(), tmp_path / "faults.json")
    root = tmp_path / "storage"
    root.mkdir()
    (root / "x.txt").write_bytes(b"hello")
    quick = StorageRetry(max_elapsed_s=0.2, initial_s=0.01, max_s=0.05)
    location = StorageLocation.resolve(str(root), faults.fs, retry=quick)
    reader = _Reader.remote(location)  # type: ignore[attr-defined]  # added by ray.remote
    pid, data = ray.get(reader.read.remote("x.txt"))
    assert data == b"hello" and pid != os.getpid()
    faults.down(60)
    assert ray.get(reader.read.remote("x.txt")) == (pid, "StorageUnavailableError")
    faults.up()
    assert ray.get(reader.read.remote("x.txt")) == (pid, b"hello")
    assert {f["pid"] for f in faults.injected()} == {pid}
    ray.kill(reader)
