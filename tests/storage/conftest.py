"""Fixtures for the storage contract suite: a local folder and S3 served by moto on 127.0.0.1.

moto runs as a real server process (``python -m moto.server``) for the whole session; every
test gets its own key prefix in one bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from s3server import BUCKET, MotoServer, free_port
from trees import Tree, read_tree, write_tree  # noqa: F401 - re-exported to the tests

from tune_ckpt.config import StorageRetry
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

QUICK_RETRY = StorageRetry(max_elapsed_s=0.3, initial_s=0.01, max_s=0.05)
"""A retry budget for tests that wait out an outage: a few retries within 0.3 s."""


def unreachable_fs() -> pafs.S3FileSystem:
    """An S3 filesystem pointed at a closed port, with one attempt and short timeouts."""
    return pafs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{free_port()}",
        scheme="http",
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        connect_timeout=1,
        request_timeout=1,
    )


@dataclass(frozen=True)
class Backend:
    """One storage backend under test: where it is (as a user would write it) and its handles.

    Attributes:
        name: "local" or "s3".
        uri: the storage path a user (or a child process) resolves to reach this root.
        location: the resolved StorageLocation.
        store: a CheckpointStore over it.
    """

    name: str
    uri: str
    location: StorageLocation
    store: CheckpointStore

    # -- raw access that bypasses the commit protocol, to damage or inspect storage ------------

    def put(self, relative: str, data: bytes) -> None:
        """Write a file (object) directly, as a crashed or foreign writer would."""
        loc = self.location
        path = loc.path(relative)
        parent = path.rsplit("/", 1)[0]
        loc.fs.create_dir(parent, recursive=True)
        with loc.fs.open_output_stream(path) as out:
            out.write(data)

    def get(self, relative: str) -> bytes:
        return self.location.read_bytes(relative)

    def files(self, relative: str = "") -> list[str]:
        """Relative paths of every file under ``relative`` (recursive), sorted."""
        loc = self.location
        return sorted(
            loc.relative_to_root(info.path)
            for info in loc.list_dir(relative, recursive=True)
            if info.type == pafs.FileType.File
        )

    def truncate(self, relative: str) -> None:
        """Cut a file to half its size (in place on disk; a rewritten object on S3)."""
        os_path = self.location.local_os_path(relative)
        if os_path is not None:
            os.truncate(os_path, os.path.getsize(os_path) // 2)
        else:
            data = self.get(relative)
            self.put(relative, data[: len(data) // 2])

    def alter(self, relative: str) -> None:
        """Flip one byte in the middle of a file, keeping its size."""
        data = bytearray(self.get(relative))
        data[len(data) // 2] ^= 0xFF
        os_path = self.location.local_os_path(relative)
        if os_path is not None:
            with open(os_path, "r+b") as f:
                f.seek(len(data) // 2)
                f.write(data[len(data) // 2 : len(data) // 2 + 1])
        else:
            self.put(relative, bytes(data))

    def remove(self, relative: str) -> None:
        """Delete one file."""
        os_path = self.location.local_os_path(relative)
        if os_path is not None:
            os.remove(os_path)
        else:
            self.location.fs.delete_file(self.location.path(relative))


def local_backend(root: Path) -> Backend:
    location = StorageLocation.resolve(str(root))
    return Backend("local", str(root), location, CheckpointStore(location))


def s3_backend(server: MotoServer) -> Backend:
    uri = server.uri(BUCKET, f"exp-{uuid.uuid4().hex[:12]}")
    location = StorageLocation.resolve(uri)
    return Backend("s3", uri, location, CheckpointStore(location))


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each contract test runs once on a local folder and once on S3 (moto)."""
    if request.param == "local":
        return local_backend(tmp_path / "storage")
    return s3_backend(request.getfixturevalue("moto_server"))


@pytest.fixture
def local(tmp_path: Path) -> Backend:
    """The local backend alone, for behaviour only local storage has."""
    return local_backend(tmp_path / "storage")


@pytest.fixture
def s3(moto_server: MotoServer) -> Backend:
    """The S3 backend alone, for behaviour only object stores have."""
    return s3_backend(moto_server)


@pytest.fixture
def sample_files() -> Tree:
    """A small checkpoint: binary, text, an empty file and a nested folder."""
    return {
        "model.bin": os.urandom(64 * 1024),
        "config.json": b'{"lr": 0.1}',
        "empty.dat": b"",
        "sub/dir/state.pkl": os.urandom(4096),
    }


MakeDir = Callable[[Tree], Path]


@pytest.fixture
def make_dir(tmp_path: Path) -> MakeDir:
    """Write a tree of files into a fresh local folder (the producer's side)."""
    counter = iter(range(1_000_000))

    def make(files: Tree) -> Path:
        return write_tree(tmp_path / f"src{next(counter)}", files)

    return make
