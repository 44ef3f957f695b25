"""Durable, fast file work for checkpoints on local disk (and NFS).

What is committed there must survive a power loss, so every file is fsynced before the
manifest is written, the manifest before the rename, and the parent folder after it. fsync,
file copies and writes release the GIL, as does hashing, so each runs in a helper thread while
the calling thread hashes the same bytes: a checkpoint is read once and costs about the
longer of its hashing and its disk work, not their sum.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from tune_ckpt.storage.manifest import CHUNK, file_chunks, hash_chunks, view_chunks


def fsync_path(path: str) -> None:
    """Flush a file's (or a folder's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: str, buffer: bytearray) -> tuple[int, str]:
    """(size, content hash) of a file, read once through ``buffer``."""
    with open(path, "rb", buffering=0) as src:
        return hash_chunks(file_chunks(src, buffer))


def hash_view(view: memoryview) -> tuple[int, str]:
    return hash_chunks(view_chunks(view))


def _copy_and_sync(src: str, dst: str) -> None:
    shutil.copyfile(src, dst)  # in-kernel copy (sendfile / copy_file_range)
    fsync_path(dst)


def _write_and_sync(view: memoryview, dst: str) -> None:
    with open(dst, "wb", buffering=0) as out:
        out.write(view)
        os.fsync(out.fileno())


SMALL = 1024 * 1024
"""Below this size a file is synced inline: a thread hand-off would cost more than it saves."""


class DurableFolder:
    """Fills a local staging folder with files made durable in the background.

    Use as a context manager; leaving the block waits until every file is on disk (and
    re-raises the first background error). The helper thread and the read buffer are made
    only when a file large enough to need them comes along.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._buffer = bytearray(0)

    def __enter__(self) -> DurableFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for future in self._pending:
                future.result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _in_background(self, size: int, work: Callable[..., None], *args: object) -> None:
        if size < SMALL:
            work(*args)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tune_ckpt-io")
        self._pending.append(self._pool.submit(work, *args))

    def _read_buffer(self, size: int) -> bytearray:
        wanted = max(1, min(CHUNK, size))
        if len(self._buffer) < wanted:
            self._buffer = bytearray(wanted)
        return self._buffer

    def _target(self, relative: str) -> str:
        target = os.path.join(self.folder, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        return target

    def adopt(self, relative: str) -> tuple[int, str]:
        """A file already written into the folder (by a trainable): sync and hash it."""
        path = os.path.join(self.folder, *relative.split("/"))
        size = os.path.getsize(path)
        self._in_background(size, fsync_path, path)
        return hash_file(path, self._read_buffer(size))

    def copy_in(self, relative: str, source: str) -> tuple[int, str]:
        """Copy ``source`` in (and sync it) while hashing the source. A small file is read
        once into memory, then hashed and written from there."""
        size = os.path.getsize(source)
        if size < SMALL:
            with open(source, "rb") as src:
                data = src.read()
            _write_and_sync(memoryview(data), self._target(relative))
            return hash_view(memoryview(data))
        self._in_background(size, _copy_and_sync, source, self._target(relative))
        return hash_file(source, self._read_buffer(size))

    def write_in(self, relative: str, view: memoryview) -> tuple[int, str]:
        """Write bytes in (and sync them) while hashing them."""
        self._in_background(len(view), _write_and_sync, view, self._target(relative))
        return hash_view(view)


def write_synced(path: str, data: bytes) -> None:
    """Write and sync a small file (the manifest, metadata)."""
    _write_and_sync(memoryview(data), path)


def subfolders_to_sync(folder: str) -> Iterator[str]:
    """Every folder under ``folder`` (itself included): new entries in each must be synced."""
    for dirpath, _dirnames, _filenames in os.walk(folder):
        yield dirpath
