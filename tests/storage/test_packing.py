"""PackedCheckpoint at scale: a 256 MiB checkpoint through pickle protocol 5 and to storage."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from tune_ckpt.storage.manifest import MANIFEST_NAME
from tune_ckpt.storage.packing import PackedCheckpoint

from .conftest import Backend, local_backend

MiB = 1024 * 1024
BIG = 256 * MiB
SMALL = {"config.json": b'{"layers": 12}', "empty": b"", "opt/state.bin": os.urandom(3 * MiB + 5)}


def same_file(a: Path | str, b: Path | str) -> bool:
    """Byte-for-byte comparison of two files in 16 MiB chunks."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(16 * MiB)
            if chunk != fb.read(16 * MiB):
                return False
            if not chunk:
                return True


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A checkpoint folder with one 256 MiB file (every MiB distinct) and a few small ones."""
    root = tmp_path_factory.mktemp("big_checkpoint")
    block = bytearray(os.urandom(MiB))
    with open(root / "weights.bin", "wb") as out:
        for index in range(BIG // MiB):
            # Fresh bytes at the start of every MiB: a misplaced or repeated chunk shows.
            block[:72] = index.to_bytes(8, "little") + os.urandom(64)
            out.write(block)
    for rel, data in SMALL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    yield root


def assert_same_tree(expected: Path, actual: Path, extra: tuple[str, ...] = ()) -> None:
    """``actual`` holds exactly the files of ``expected`` (plus ``extra``), byte for byte."""
    assert same_file(expected / "weights.bin", actual / "weights.bin")
    for rel, data in SMALL.items():
        assert (actual / rel).read_bytes() == data
    assert sorted(p.relative_to(actual).as_posix() for p in actual.rglob("*") if p.is_file()) == (
        sorted(["weights.bin", *SMALL, *extra])
    )


def test_big_checkpoint_through_pickle_protocol_5(big_dir: Path, tmp_path: Path) -> None:
    """256 MiB packed, pickled out of band with protocol 5 and written back is identical."""
    packed = PackedCheckpoint.from_local_dir(str(big_dir), {"step": 1})
    assert packed.nbytes == BIG + sum(len(d) for d in SMALL.values())
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(packed, protocol=5, buffer_callback=buffers.append)
    assert len(data) < 64 * 1024  # the bytes are not in the pickle stream
    assert [b.raw().nbytes for b in buffers] == [packed.nbytes]
    del packed
    received = pickle.loads(data, buffers=buffers)
    assert received.metadata == {"step": 1}
    received.write_to_local_dir(str(tmp_path / "out"))
    assert_same_tree(big_dir, tmp_path / "out")


def test_big_checkpoint_through_commit_packed(big_dir: Path, tmp_path: Path) -> None:
    """256 MiB packed and committed to local storage verifies and matches byte for byte."""
    backend: Backend = local_backend(tmp_path / "storage")
    packed = PackedCheckpoint.from_local_dir(str(big_dir))
    committed = backend.store.commit_packed("trial_0/checkpoint_000001", packed, 1)
    del packed
    assert committed.manifest.total_size == BIG + sum(len(d) for d in SMALL.values())
    assert backend.store.verify("trial_0/checkpoint_000001") == committed
    stored = backend.location.local_os_path("trial_0/checkpoint_000001")
    assert stored is not None
    assert_same_tree(big_dir, Path(stored), extra=(MANIFEST_NAME,))
