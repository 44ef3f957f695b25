"""The manifest: the commit marker of a checkpoint and the list it is verified against.

A checkpoint exists if and only if its manifest exists. The manifest lists every file of the
checkpoint (relative to the checkpoint folder) with its size and BLAKE3 hash, and is written
last. The user metadata file is not listed: it may be updated after the commit.

BLAKE3 rather than SHA-256: as strong, and 2.3x faster here (0.067 s against 0.153 s for
256 MiB on this machine), which matters because every save and every restore hashes the
whole checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import blake3

from tune_ckpt.errors import CorruptCheckpointError
from tune_ckpt.metrics import jsonable
from tune_ckpt.storage.paths import check_relative

MANIFEST_NAME = ".tune_ckpt_manifest.json"
METADATA_NAME = ".metadata.json"
FORMAT_VERSION = 1
HASH_ALGORITHM = "blake3"
UNLISTED = frozenset({MANIFEST_NAME, METADATA_NAME})
"""Files inside a checkpoint folder that the manifest does not list."""


CHUNK = 8 * 1024 * 1024
"""The unit data is read, hashed and written in."""


def new_hasher() -> Any:
    """A fresh content hasher (``update``, ``hexdigest``)."""
    return blake3.blake3()


def file_chunks(src: Any, buffer: bytearray) -> Iterator[memoryview]:
    """Chunks of a readable file, read into (and yielded as views of) ``buffer``."""
    view = memoryview(buffer)
    while n := src.readinto(view):
        yield view[:n]


def view_chunks(view: memoryview) -> Iterator[memoryview]:
    for start in range(0, len(view), CHUNK):
        yield view[start : start + CHUNK]


def hash_chunks(
    chunks: Iterable[memoryview], write: Callable[[memoryview], object] | None = None
) -> tuple[int, str]:
    """(size, content hash) of a stream of chunks, passing each to ``write`` on the way, so
    data is hashed in the same pass that moves it."""
    hasher = new_hasher()
    size = 0
    for chunk in chunks:
        hasher.update(chunk)
        if write is not None:
            write(chunk)
        size += len(chunk)
    return size, hasher.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a checkpoint: path relative to the checkpoint folder, size, hash."""

    path: str
    size: int
    content_hash: str

    def __post_init__(self) -> None:
        check_relative(self.path)


@dataclass(frozen=True)
class Manifest:
    """Everything needed to tell a complete checkpoint from a damaged one."""

    files: tuple[ManifestEntry, ...]
    iteration: int | None = None
    created: float = field(default_factory=time.time)
    results: tuple[dict[str, Any], ...] = ()
    """The trial's results since its previous checkpoint, up to this one: what a restore
    needs to rebuild the history if the driver died before it wrote them itself."""

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files)

    def entry(self, path: str) -> ManifestEntry | None:
        for entry in self.files:
            if entry.path == path:
                return entry
        return None

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT_VERSION,
            "algorithm": HASH_ALGORITHM,
            "iteration": self.iteration,
            "created": self.created,
            "files": [
                {"path": e.path, "size": e.size, "hash": e.content_hash}
                for e in sorted(self.files, key=lambda e: e.path)
            ],
        }
        if self.results:
            body["results"] = [jsonable(r) for r in self.results]
        return json.dumps(body, sort_keys=True, indent=1).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "") -> Manifest:
        """Parse a manifest; a malformed one makes its checkpoint bad: CorruptCheckpointError
        naming ``where`` (the checkpoint) and why."""
        try:
            body = json.loads(data)
            if not isinstance(body, dict):
                raise ValueError(f"a JSON object is needed, not {type(body).__name__}")
            if body.get("format") != FORMAT_VERSION or body.get("algorithm") != HASH_ALGORITHM:
                raise ValueError(
                    f"unsupported format {body.get('format')!r}/{body.get('algorithm')!r}"
                )
            files = tuple(
                ManifestEntry(str(f["path"]), int(f["size"]), str(f["hash"])) for f in body["files"]
            )
            iteration = body.get("iteration")
            results = body.get("results") or []
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise ValueError("results must be a list of objects")
            return cls(
                files,
                None if iteration is None else int(iteration),
                float(body.get("created", 0.0)),
                tuple(results),
            )
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"{MANIFEST_NAME} does not parse: {type(exc).__name__}: {exc}"
            raise CorruptCheckpointError(where, [problem]) from exc


def digest(data: bytes) -> str:
    """The content hash of a manifest's bytes, recorded in CheckpointRecords."""
    return str(blake3.blake3(data).hexdigest())
