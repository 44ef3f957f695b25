"""The checkpoint commit protocol, one contract over two backends: local disk and S3 (moto).

A checkpoint exists if and only if its manifest exists; everything else (interrupted writes,
damaged files) is invisible to listings, swept, or reported by verify.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import blake3
import pytest

from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    StorageUnavailableError,
    UnsafePathError,
)
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME, METADATA_NAME, digest
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.storage.staging import TMP_PREFIX, TRASH_PREFIX

from .conftest import (
    QUICK_RETRY,
    Backend,
    MakeDir,
    MotoServer,
    Tree,
    read_tree,
    unreachable_fs,
)

MiB = 1024 * 1024
CKPT = "trial_0/checkpoint_000001"


def content_hash(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


def committed_files(backend: Backend, relative: str) -> Tree:
    """The checkpoint's files on storage, without the manifest and metadata."""
    prefix = relative + "/"
    return {
        path[len(prefix) :]: backend.get(path)
        for path in backend.files(relative)
        if path[len(prefix) :] not in (MANIFEST_NAME, METADATA_NAME)
    }


# -- commit, list, read ----------------------------------------------------------------------


def test_commit_then_list(backend: Backend, make_dir: MakeDir, sample_files: Tree) -> None:
    """Committed checkpoints are listed oldest first by iteration; other entries are ignored."""
    src = make_dir(sample_files)
    for iteration in (10, 2, 100):
        backend.store.commit_local_dir(f"trial_0/checkpoint_{iteration:06d}", str(src), iteration)
    backend.put("trial_0/params.json", b"{}")
    backend.put("trial_0/notes/checkpoint.txt", b"x")
    assert backend.store.list_committed("trial_0") == [
        "trial_0/checkpoint_000002",
        "trial_0/checkpoint_000010",
        "trial_0/checkpoint_000100",
    ]


def test_list_of_missing_trial_is_empty(backend: Backend) -> None:
    """A trial folder that does not exist has no committed checkpoints."""
    assert backend.store.list_committed("no_such_trial") == []


def test_commit_copies_files_byte_for_byte(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """After a commit, storage holds exactly the source files plus the manifest."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    assert committed_files(backend, CKPT) == sample_files
    assert set(backend.files(CKPT)) == {f"{CKPT}/{rel}" for rel in sample_files} | {
        f"{CKPT}/{MANIFEST_NAME}"
    }


def test_read_returns_the_manifest(backend: Backend, make_dir: MakeDir, sample_files: Tree) -> None:
    """read() returns the manifest listing every file's size and hash, and its digest."""
    result = backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 7)
    committed = backend.store.read(CKPT)
    assert committed.path == CKPT
    assert committed.iteration == 7
    assert {e.path: (e.size, e.content_hash) for e in committed.manifest.files} == {
        rel: (len(data), content_hash(data)) for rel, data in sample_files.items()
    }
    raw_manifest = backend.get(f"{CKPT}/{MANIFEST_NAME}")
    assert committed.manifest_digest == digest(raw_manifest) == result.manifest_digest


def test_iteration_falls_back_to_folder_name(backend: Backend, make_dir: MakeDir) -> None:
    """A checkpoint committed without an iteration takes it from its folder name."""
    backend.store.commit_local_dir("t/checkpoint_000042", str(make_dir({"f": b"x"})), None)
    assert backend.store.read("t/checkpoint_000042").iteration == 42


def test_read_of_uncommitted_raises_not_found(backend: Backend) -> None:
    """read() of a folder without a manifest raises CheckpointNotFoundError naming it."""
    backend.put("t/checkpoint_000003/model.bin", b"partial")
    for relative in ("t/checkpoint_000003", "t/checkpoint_000004"):
        with pytest.raises(CheckpointNotFoundError) as info:
            backend.store.read(relative)
        assert info.value.path == backend.location.uri(relative)


def test_commit_rejects_unsafe_paths(backend: Backend, make_dir: MakeDir) -> None:
    """A checkpoint path that climbs or is absolute is refused before anything is written."""
    src = str(make_dir({"f": b"x"}))
    for bad in ("../escape/checkpoint_000001", "/abs/checkpoint_000001", "t/../../x"):
        with pytest.raises(UnsafePathError):
            backend.store.commit_local_dir(bad, src, 1)
    assert backend.files() == []


def test_commit_of_missing_folder_commits_nothing(backend: Backend, tmp_path: Path) -> None:
    """Committing a source folder that does not exist fails and writes nothing."""
    with pytest.raises(FileNotFoundError):
        backend.store.commit_local_dir(CKPT, str(tmp_path / "never_written"), 1)
    assert backend.store.list_committed("trial_0") == []
    assert backend.files() == []


def test_commit_skips_commit_files_of_the_source(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """Re-committing a checkpoint folder lists only its real files and keeps its metadata."""
    src = make_dir({**sample_files, MANIFEST_NAME: b"stale", METADATA_NAME: b'{"k": 1}'})
    committed = backend.store.commit_local_dir(CKPT, str(src), 1)
    assert {e.path for e in committed.manifest.files} == set(sample_files)
    assert json.loads(backend.get(f"{CKPT}/{METADATA_NAME}")) == {"k": 1}
    assert backend.store.read_packed(CKPT).metadata == {"k": 1}
    backend.store.verify(CKPT)


# -- verify ----------------------------------------------------------------------------------


def test_verify_passes_on_intact_checkpoint(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """verify() of an untouched checkpoint returns it, with or without the recorded digest."""
    result = backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    assert backend.store.verify(CKPT) == result
    assert backend.store.verify(CKPT, result.manifest_digest).manifest_digest == (
        result.manifest_digest
    )


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate", "model.bin: 32768 bytes, manifest says 65536"),
        ("alter", "model.bin: content hash differs from the manifest"),
        ("remove", "model.bin: missing"),
    ],
)
def test_verify_detects_damaged_file(
    backend: Backend, make_dir: MakeDir, sample_files: Tree, damage: str, expected: str
) -> None:
    """A file truncated, altered or deleted after commit makes verify raise, naming it."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    getattr(backend, damage)(f"{CKPT}/model.bin")
    with pytest.raises(CorruptCheckpointError) as info:
        backend.store.verify(CKPT)
    assert info.value.path == backend.location.uri(CKPT)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(expected)
    assert "model.bin" in str(info.value)


def test_verify_lists_every_damaged_file(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """Several damaged files are all reported, one problem each."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    backend.remove(f"{CKPT}/config.json")
    backend.alter(f"{CKPT}/sub/dir/state.pkl")
    with pytest.raises(CorruptCheckpointError) as info:
        backend.store.verify(CKPT)
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "config.json",
        "sub/dir/state.pkl",
    ]


def test_verify_rejects_replaced_manifest(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """A manifest that differs from the digest recorded at commit is reported."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    with pytest.raises(CorruptCheckpointError, match="manifest differs"):
        backend.store.verify(CKPT, expected_digest="0" * 64)


def test_metadata_update_after_commit_keeps_checkpoint_valid(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """Setting metadata on a committed checkpoint does not break verification."""
    result = backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    loc = backend.location
    checkpoint = Checkpoint.from_directory(loc.path(CKPT), filesystem=loc.fs)
    checkpoint.set_metadata({"epoch": 3})
    assert backend.store.verify(CKPT, result.manifest_digest) == result
    assert backend.store.read_packed(CKPT).metadata == {"epoch": 3}


# -- interrupted writes and sweep ------------------------------------------------------------


def test_uncommitted_folder_is_invisible_and_swept(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """Files under checkpoint_000005/ without a manifest are not listed; sweep removes them."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    backend.put("trial_0/checkpoint_000005/model.bin", os.urandom(1000))
    backend.put("trial_0/checkpoint_000005/sub/opt.bin", b"half")
    assert backend.store.list_committed("trial_0") == [CKPT]
    with pytest.raises(CheckpointNotFoundError):
        backend.store.read("trial_0/checkpoint_000005")
    assert backend.store.sweep("trial_0") == ["trial_0/checkpoint_000005"]
    assert backend.files("trial_0/checkpoint_000005") == []
    assert backend.store.list_committed("trial_0") == [CKPT]
    backend.store.verify(CKPT)


def test_sweep_removes_temporary_and_trash_leftovers(backend: Backend) -> None:
    """Leftover temporary and trash folders are swept; other trial files stay."""
    backend.put(f"t/{TMP_PREFIX}000003_ab12cd34/model.bin", b"x")
    backend.put(f"t/{TRASH_PREFIX}000002_ef56ab78/model.bin", b"y")
    backend.put("t/params.json", b"{}")
    backend.put("t/result.json", b"{}\n")
    removed = backend.store.sweep("t")
    assert sorted(removed) == [f"t/{TMP_PREFIX}000003_ab12cd34", f"t/{TRASH_PREFIX}000002_ef56ab78"]
    assert backend.files("t") == ["t/params.json", "t/result.json"]


def test_sweep_of_clean_trial_removes_nothing(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """sweep leaves committed checkpoints alone and reports nothing."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    before = backend.files("trial_0")
    assert backend.store.sweep("trial_0") == []
    assert backend.files("trial_0") == before
    assert backend.store.sweep("missing_trial") == []


def test_sweep_dry_run_reports_the_same_and_changes_nothing(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """sweep(dry_run=True) returns exactly what a real sweep then removes, and leaves every
    file in place until that real sweep."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    backend.put("trial_0/checkpoint_000005/model.bin", b"partial")
    backend.put(f"trial_0/{TMP_PREFIX}000007_ab12cd34/model.bin", b"x")
    backend.put(f"trial_0/{TRASH_PREFIX}000002_ef56ab78/model.bin", b"y")
    before = backend.files("trial_0")
    expected = sorted(
        [
            "trial_0/checkpoint_000005",
            f"trial_0/{TMP_PREFIX}000007_ab12cd34",
            f"trial_0/{TRASH_PREFIX}000002_ef56ab78",
        ]
    )
    assert sorted(backend.store.sweep("trial_0", dry_run=True)) == expected
    assert backend.files("trial_0") == before
    assert sorted(backend.store.sweep("trial_0")) == expected
    assert backend.files("trial_0") == [p for p in before if p.startswith(CKPT + "/")]
    backend.store.verify(CKPT)


def test_sweep_dry_run_reports_a_publish_without_doing_it(
    local: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """A sealed temporary folder whose rename was interrupted is reported as published by a
    dry run and stays where it is; a manifest-less folder it replaces is not reported as
    removed, by the dry run or the real sweep."""
    local.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    root = local.location.local_os_path("")
    assert root is not None
    tmp_name = f"{TMP_PREFIX}000001_0badc0de"
    sealed = Path(root) / "trial_0" / tmp_name
    os.rename(Path(root) / CKPT, sealed)
    (Path(root) / CKPT).mkdir()  # a half-made folder at the target, without a manifest
    (Path(root) / CKPT / "partial.bin").write_bytes(b"p")
    dry = local.store.sweep_report("trial_0", dry_run=True)
    assert dry.published == ((f"trial_0/{tmp_name}", CKPT),)
    assert dry.removed == ()
    assert sealed.exists() and local.store.list_committed("trial_0") == []
    assert local.store.sweep_report("trial_0") == dry
    assert not sealed.exists()
    assert local.store.list_committed("trial_0") == [CKPT]
    local.store.verify(CKPT)


def test_staged_but_uncommitted_is_invisible_and_swept(local: Backend) -> None:
    """On local storage a staged folder is invisible until commit_staged; sweep removes it."""
    staged = Path(local.store.stage_local("trial_0/checkpoint_000005"))
    (staged / "model.bin").write_bytes(os.urandom(5000))
    assert staged.name.startswith(TMP_PREFIX)
    assert local.store.list_committed("trial_0") == []
    with pytest.raises(CheckpointNotFoundError):
        local.store.read("trial_0/checkpoint_000005")
    assert local.store.sweep("trial_0") == [f"trial_0/{staged.name}"]
    assert not staged.exists()
    assert local.files("trial_0") == []


def test_commit_staged_publishes_the_folder(local: Backend) -> None:
    """commit_staged hashes the staged files, writes the manifest and renames into place."""
    staged = Path(local.store.stage_local("trial_0/checkpoint_000002"))
    data = os.urandom(10_000)
    (staged / "nested").mkdir()
    (staged / "nested" / "w.bin").write_bytes(data)
    committed = local.store.commit_staged("trial_0/checkpoint_000002", str(staged), 2)
    assert not staged.exists()
    assert local.store.list_committed("trial_0") == ["trial_0/checkpoint_000002"]
    entry = committed.manifest.entry("nested/w.bin")
    assert entry is not None and (entry.size, entry.content_hash) == (len(data), content_hash(data))
    assert local.store.verify("trial_0/checkpoint_000002") == committed


def test_stage_local_needs_local_storage(s3: Backend) -> None:
    """stage_local on an object store is refused."""
    with pytest.raises(ValueError, match="local storage"):
        s3.store.stage_local("trial_0/checkpoint_000001")


CHILD = textwrap.dedent(
    """
    import sys
    from tune_ckpt.storage.commit import CheckpointStore
    from tune_ckpt.storage.location import StorageLocation

    root, source, relative = sys.argv[1:4]
    CheckpointStore(StorageLocation.resolve(root)).commit_local_dir(relative, source, 1)
    print("committed", flush=True)
    """
)


def open_fifo_for_writing(fifo: Path, proc: subprocess.Popen[bytes]) -> int:
    """Open ``fifo`` for writing once the child has opened it for reading (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"child exited early ({proc.returncode}): {err.decode()}")
            if time.monotonic() > deadline:
                pytest.fail("child never reached the last file of the checkpoint")
            time.sleep(0.01)
        else:
            os.set_blocking(fd, True)
            return fd


def test_sigkill_mid_commit_is_invisible_and_swept(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """A writer SIGKILLed mid-commit leaves nothing committed; sweep cleans up after it."""
    big = {f"a_{i}.bin": os.urandom(4 * MiB) for i in range(3)}
    src = make_dir(big)
    # The last file is a FIFO: the child copies the big files, then blocks reading it, so it
    # is provably mid-copy (and not finished) when it is killed.
    os.mkfifo(src / "z_stream.bin")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, backend.uri, str(src), CKPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    fd = -1
    try:
        fd = open_fifo_for_writing(src / "z_stream.bin", proc)
        view = memoryview(os.urandom(2 * MiB))
        while view:
            view = view[os.write(fd, view) :]
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if fd >= 0:
            os.close(fd)
    assert proc.returncode == -signal.SIGKILL
    assert b"committed" not in out

    leftovers = backend.files("trial_0")
    names = {path.rsplit("/", 1)[-1] for path in leftovers}
    assert set(big) <= names  # the interrupted write really left files behind
    assert MANIFEST_NAME not in names
    assert backend.store.list_committed("trial_0") == []
    with pytest.raises(CheckpointNotFoundError):
        backend.store.read(CKPT)

    assert len(backend.store.sweep("trial_0")) == 1
    assert backend.files("trial_0") == []

    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    assert backend.store.list_committed("trial_0") == [CKPT]
    assert committed_files(backend, CKPT) == sample_files


# -- newest_verified -------------------------------------------------------------------------


def commit_three(backend: Backend, make_dir: MakeDir) -> list[str]:
    """Commit checkpoints 1, 2, 3 of trial_0 with distinct content; return them newest first."""
    paths = []
    for iteration in (1, 2, 3):
        relative = f"trial_0/checkpoint_{iteration:06d}"
        src = make_dir({"model.bin": os.urandom(2048), "step.txt": str(iteration).encode()})
        backend.store.commit_local_dir(relative, str(src), iteration)
        paths.append(relative)
    return paths[::-1]


def test_newest_verified_skips_corrupt_newest(
    backend: Backend, make_dir: MakeDir, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt newest checkpoint is skipped with a warning giving the reason."""
    newest_first = commit_three(backend, make_dir)
    backend.alter(f"{newest_first[0]}/model.bin")
    caplog.set_level(logging.WARNING, logger="tune_ckpt.storage.reading")
    chosen = backend.store.newest_verified(newest_first)
    assert chosen is not None
    assert chosen.path == "trial_0/checkpoint_000002"
    assert chosen.iteration == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert backend.location.uri(newest_first[0]) in message
    assert "model.bin: content hash differs" in message


def test_newest_verified_skips_vanished_and_digest_mismatch(
    backend: Backend, make_dir: MakeDir, caplog: pytest.LogCaptureFixture
) -> None:
    """Vanished checkpoints and manifests differing from the record are skipped too."""
    newest_first = commit_three(backend, make_dir)
    backend.store.delete(newest_first[0])
    recorded = {newest_first[1]: "f" * 64}
    caplog.set_level(logging.WARNING, logger="tune_ckpt.storage.reading")
    chosen = backend.store.newest_verified(newest_first, recorded)
    assert chosen is not None and chosen.path == "trial_0/checkpoint_000001"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "no longer committed" in messages[0]
    assert "manifest differs" in messages[1]


def test_newest_verified_none_when_all_bad(backend: Backend, make_dir: MakeDir) -> None:
    """When no candidate verifies, newest_verified returns None."""
    newest_first = commit_three(backend, make_dir)
    for relative in newest_first:
        backend.truncate(f"{relative}/model.bin")
    assert backend.store.newest_verified(newest_first) is None
    assert backend.store.newest_verified([]) is None


def test_newest_verified_does_not_hide_storage_outage(moto_server: MotoServer) -> None:
    """An unreachable backend raises a storage error; it is not mistaken for corruption."""
    # moto_server only provides the AWS test credentials; the endpoint is a closed port.
    location = StorageLocation.resolve(
        "bucket/exp", storage_filesystem=unreachable_fs(), retry=QUICK_RETRY
    )
    with pytest.raises(StorageUnavailableError):
        CheckpointStore(location).newest_verified(["t/checkpoint_000002", "t/checkpoint_000001"])


# -- delete ----------------------------------------------------------------------------------


def test_delete_removes_checkpoint(backend: Backend, make_dir: MakeDir) -> None:
    """delete() un-commits and removes every file of one checkpoint, leaving the others."""
    newest_first = commit_three(backend, make_dir)
    backend.store.delete("trial_0/checkpoint_000002")
    assert backend.store.list_committed("trial_0") == [
        "trial_0/checkpoint_000001",
        "trial_0/checkpoint_000003",
    ]
    assert backend.files("trial_0/checkpoint_000002") == []
    with pytest.raises(CheckpointNotFoundError):
        backend.store.read("trial_0/checkpoint_000002")
    for relative in (newest_first[0], newest_first[2]):
        backend.store.verify(relative)


def test_delete_of_missing_checkpoint_is_a_no_op(backend: Backend) -> None:
    """Deleting what is not there does not raise (retention may run twice)."""
    backend.store.delete("trial_0/checkpoint_000009")
    assert backend.store.list_committed("trial_0") == []


# -- packed checkpoints ----------------------------------------------------------------------


def test_commit_packed_read_packed_round_trip(
    backend: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """A packed checkpoint committed and read back is byte for byte the same, metadata too."""
    packed = PackedCheckpoint.from_local_dir(str(make_dir(sample_files)), {"epoch": 4})
    committed = backend.store.commit_packed(CKPT, packed, 4)
    assert backend.store.list_committed("trial_0") == [CKPT]
    assert backend.store.verify(CKPT) == committed
    assert committed_files(backend, CKPT) == sample_files
    back = backend.store.read_packed(CKPT)
    assert {rel: bytes(back.file(rel)) for rel in back.paths} == sample_files
    assert back.metadata == {"epoch": 4}
    assert back.nbytes == packed.nbytes


def test_read_packed_of_directory_commit(
    backend: Backend, make_dir: MakeDir, sample_files: Tree, tmp_path: Path
) -> None:
    """read_packed of a checkpoint committed from a folder rebuilds that folder."""
    backend.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    packed = backend.store.read_packed(CKPT)
    assert packed.metadata == {}
    packed.write_to_local_dir(str(tmp_path / "out"))
    assert read_tree(tmp_path / "out") == sample_files


# -- replacing -------------------------------------------------------------------------------


def test_recommit_replaces_checkpoint(backend: Backend, make_dir: MakeDir) -> None:
    """Committing the same path again replaces the checkpoint: old files are gone."""
    old = {"a.bin": b"old-a", "b.bin": b"only in old"}
    new = {"a.bin": b"new-a" * 100, "c/d.bin": b"only in new"}
    first = backend.store.commit_local_dir(CKPT, str(make_dir(old)), 1)
    second = backend.store.commit_local_dir(CKPT, str(make_dir(new)), 1)
    assert second.manifest_digest != first.manifest_digest
    assert backend.store.read(CKPT) == second
    assert committed_files(backend, CKPT) == new
    assert backend.store.verify(CKPT, second.manifest_digest) == second
    assert backend.store.list_committed("trial_0") == [CKPT]
    # No temporary or trash folders are left behind.
    assert all(path.startswith(f"{CKPT}/") for path in backend.files("trial_0")), backend.files(
        "trial_0"
    )


def test_recommit_packed_over_directory(backend: Backend, make_dir: MakeDir) -> None:
    """A packed commit replaces a folder commit at the same path."""
    backend.store.commit_local_dir(CKPT, str(make_dir({"x.bin": b"1" * 100})), 1)
    packed = PackedCheckpoint.from_local_dir(str(make_dir({"y.bin": b"2" * 50})))
    backend.store.commit_packed(CKPT, packed, 1)
    assert committed_files(backend, CKPT) == {"y.bin": b"2" * 50}
    backend.store.verify(CKPT)


def test_sweep_publishes_a_sealed_folder_whose_rename_was_interrupted(
    local: Backend, make_dir: MakeDir, sample_files: Tree
) -> None:
    """A replacement interrupted after the old checkpoint moved aside and before the sealed new
    one moved in: sweep publishes the new one instead of deleting both."""
    local.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    root = local.location.local_os_path("")
    assert root is not None
    sealed = Path(root) / "trial_0" / f"{TMP_PREFIX}000001_0badc0de"
    os.rename(Path(root) / CKPT, sealed)  # the state a crash between the two renames leaves
    assert local.store.list_committed("trial_0") == []
    assert local.store.sweep("trial_0") == []
    assert local.store.list_committed("trial_0") == [CKPT]
    local.store.verify(CKPT)
    assert not sealed.exists()
