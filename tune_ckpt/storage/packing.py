"""PackedCheckpoint: a checkpoint folder as one contiguous buffer plus an index.

It exists to move checkpoints through Ray's object store. Pickled with protocol 5 (as Ray
does), the buffer travels out of band: ``ray.put`` copies it once into shared memory and
``ray.get`` maps it without another copy, so even a checkpoint of several GiB is read from disk
once, copied once into the object store and written to disk once at the other end.
"""

from __future__ import annotations

import errno
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt.storage.manifest import UNLISTED
from tune_ckpt.storage.paths import check_relative

_Buffer = bytes | bytearray | memoryview


def local_files(directory: str) -> Iterator[tuple[str, str]]:
    """(relative path, OS path) of every regular file under ``directory``, sorted. A missing
    ``directory`` raises FileNotFoundError (os.walk alone would list it as empty)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "no checkpoint folder at this path", directory)
    found = []
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, directory).replace(os.sep, "/")
            found.append((rel, full))
    yield from sorted(found)


@dataclass
class PackedCheckpoint:
    """Files of a checkpoint (``entries``: path, offset, size) inside ``buffer``.

    ``metadata`` is the checkpoint's user metadata (JSON).
    """

    entries: tuple[tuple[str, int, int], ...]
    buffer: _Buffer
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path, _, _ in self.entries:
            check_relative(path)

    @property
    def nbytes(self) -> int:
        return sum(size for _, _, size in self.entries)

    @property
    def paths(self) -> list[str]:
        return [path for path, _, _ in self.entries]

    def file(self, path: str) -> memoryview:
        """A zero-copy view of one file's bytes."""
        for name, offset, size in self.entries:
            if name == path:
                return memoryview(self.buffer)[offset : offset + size]
        raise KeyError(path)

    def __reduce_ex__(self, protocol: Any) -> Any:
        buffer: pickle.PickleBuffer | bytes
        if isinstance(protocol, int) and protocol >= 5:
            buffer = pickle.PickleBuffer(self.buffer)
        else:
            buffer = bytes(self.buffer)
        return (_rebuild, (self.entries, buffer, self.metadata))

    @classmethod
    def from_local_dir(
        cls, directory: str, metadata: dict[str, Any] | None = None
    ) -> PackedCheckpoint:
        """Read every file under ``directory`` (except manifest/metadata files) into one
        buffer, each byte read once."""
        listing = [
            (rel, full, os.path.getsize(full))
            for rel, full in local_files(directory)
            if rel not in UNLISTED
        ]
        return cls.from_sources(
            [(rel, size, _local_reader(full)) for rel, full, size in listing], metadata
        )

    @classmethod
    def from_sources(
        cls,
        sources: list[tuple[str, int, Any]],
        metadata: dict[str, Any] | None = None,
    ) -> PackedCheckpoint:
        """Build from ``(path, size, fill)`` where ``fill(view)`` fills a memoryview of
        exactly ``size`` bytes."""
        total = sum(size for _, size, _ in sources)
        buffer = bytearray(total)
        view = memoryview(buffer)
        entries = []
        offset = 0
        for rel, size, fill in sources:
            fill(view[offset : offset + size])
            entries.append((rel, offset, size))
            offset += size
        return cls(tuple(entries), buffer, dict(metadata or {}))

    def write_to_local_dir(self, directory: str) -> None:
        """Write the files under ``directory`` (created if needed)."""
        for rel, offset, size in self.entries:
            target = os.path.join(directory, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(memoryview(self.buffer)[offset : offset + size])


def _rebuild(
    entries: tuple[tuple[str, int, int], ...], buffer: _Buffer, metadata: dict[str, Any]
) -> PackedCheckpoint:
    return PackedCheckpoint(tuple(entries), buffer, metadata)


def _local_reader(path: str) -> Any:
    def fill(view: memoryview) -> None:
        with open(path, "rb", buffering=0) as src:
            got = 0
            while got < len(view):
                n = src.readinto(view[got:])
                if not n:
                    raise OSError(f"{path} shrank while being packed ({got} of {len(view)} bytes)")
                got += n

    return fill
