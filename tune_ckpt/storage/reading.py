"""Reading committed checkpoints: listing, manifests, verification, packing for transfer.

A checkpoint is committed when its manifest exists (see ``storage/commit``). Bad versus
unreadable: a checkpoint is bad (CorruptCheckpointError, or CheckpointNotFoundError without a
manifest) only when its bytes were read and failed verification: a file missing, resized or
altered, a manifest or ``.metadata.json`` that does not parse. Every storage call retries
transient errors under the location's policy; a StorageError that still comes out means the
checkpoint cannot be read now, and it always propagates: an outage is not damage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow.fs as pafs

from tune_ckpt.errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    StorageError,
    StorageNotFoundError,
)
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import (
    CHUNK,
    MANIFEST_NAME,
    METADATA_NAME,
    Manifest,
    ManifestEntry,
    digest,
    file_chunks,
    hash_chunks,
    view_chunks,
)
from tune_ckpt.storage.packing import PackedCheckpoint

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Committed:
    """A committed checkpoint: relative path, manifest and the manifest's digest."""

    path: str
    manifest: Manifest
    manifest_digest: str

    @property
    def iteration(self) -> int:
        it = self.manifest.iteration
        if it is None:
            it = paths.parse_checkpoint_dirname(paths.basename(self.path)) or 0
        return it


def list_committed(location: StorageLocation, trial_relative: str) -> list[str]:
    """Relative paths of the committed checkpoints of a trial, oldest first."""
    found = []
    for info in location.list_dir(trial_relative):
        if info.type != pafs.FileType.Directory:
            continue
        name = paths.basename(info.path)
        iteration = paths.parse_checkpoint_dirname(name)
        if iteration is None:
            continue
        relative = paths.join(trial_relative, name)
        if location.is_file(paths.join(relative, MANIFEST_NAME)):
            found.append((iteration, relative))
    return [rel for _, rel in sorted(found)]


def read(location: StorageLocation, relative: str) -> Committed:
    """The manifest of a committed checkpoint: CheckpointNotFoundError without one,
    CorruptCheckpointError when it does not parse."""
    manifest_path = paths.join(relative, MANIFEST_NAME)
    try:
        data = location.read_bytes(manifest_path)
    except StorageNotFoundError as exc:
        # A missing manifest means "not committed"; a missing bucket is a storage error,
        # which listing the folder raises. Other storage errors propagate as they are.
        location.list_dir(relative)
        raise CheckpointNotFoundError(location.uri(relative)) from exc
    manifest = Manifest.from_bytes(data, location.uri(relative))
    return Committed(relative, manifest, digest(data))


def _read_entry(
    location: StorageLocation, relative: str, entry: ManifestEntry, read_once: Callable[[], T]
) -> T:
    """Read one listed file with ``read_once`` under the retry policy. A file that is not
    there raises CorruptCheckpointError; one that cannot be read now, StorageError."""
    rel = paths.join(relative, entry.path)
    try:
        return location.call("read", rel, read_once)
    except StorageError as exc:
        # Only a permanent error on a file that is really gone makes the checkpoint bad.
        if exc.transient or location.exists(rel):
            raise
        problem = f"{entry.path}: missing ({exc.cause})"
        raise CorruptCheckpointError(location.uri(relative), [problem]) from exc


def _read_metadata(location: StorageLocation, relative: str) -> dict[str, Any] | None:
    """The checkpoint's parsed ``.metadata.json`` (None without one); one that does not
    parse as a JSON object raises CorruptCheckpointError."""
    try:
        data = location.read_bytes(paths.join(relative, METADATA_NAME))
    except StorageNotFoundError:
        return None
    try:
        metadata = json.loads(data)
    except ValueError as exc:
        problem = f"{METADATA_NAME} does not parse: {exc}"
        raise CorruptCheckpointError(location.uri(relative), [problem]) from exc
    if not isinstance(metadata, dict):
        problem = f"{METADATA_NAME} holds a {type(metadata).__name__}, not a JSON object"
        raise CorruptCheckpointError(location.uri(relative), [problem])
    return metadata


def verify(
    location: StorageLocation, relative: str, expected_digest: str | None = None
) -> Committed:
    """Check every file of the checkpoint against its manifest.

    Raises CorruptCheckpointError listing each missing, resized or altered file, a
    ``.metadata.json`` that does not parse (and a manifest that differs from
    ``expected_digest`` when given); StorageError when it cannot be read now.
    """
    committed = read(location, relative)
    problems = []
    if expected_digest and committed.manifest_digest != expected_digest:
        problems.append("manifest differs from the one recorded at commit")
    buffer = bytearray(CHUNK)
    for entry in committed.manifest.files:
        rel = paths.join(relative, entry.path)

        def hash_file(rel: str = rel) -> tuple[int, str]:
            with location.fs.open_input_stream(location.path(rel)) as src:
                return hash_chunks(file_chunks(src, buffer))

        try:
            size, hexdigest = _read_entry(location, relative, entry, hash_file)
        except CorruptCheckpointError as exc:
            problems.extend(exc.problems)
            continue
        if size != entry.size:
            problems.append(f"{entry.path}: {size} bytes, manifest says {entry.size}")
        elif hexdigest != entry.content_hash:
            problems.append(f"{entry.path}: content hash differs from the manifest")
    try:
        _read_metadata(location, relative)
    except CorruptCheckpointError as exc:
        problems.extend(exc.problems)
    if problems:
        raise CorruptCheckpointError(location.uri(relative), problems)
    return committed


def newest_verified(
    location: StorageLocation,
    candidates: Iterable[str],
    expected_digests: dict[str, str] | None = None,
    skipped: list[str] | None = None,
) -> Committed | None:
    """The first of ``candidates`` (give them newest first) that verifies. Each bad one is
    skipped with a logged reason, also appended to ``skipped``; a StorageError (storage
    unreadable now, after the retries) raises instead of skipping."""
    for relative in candidates:
        try:
            return verify(location, relative, (expected_digests or {}).get(relative))
        except CorruptCheckpointError as exc:
            reason = f"{exc.path}: corrupt: " + "; ".join(exc.problems)
        except CheckpointNotFoundError as exc:
            reason = f"{exc.path}: no longer committed on storage"
        logger.warning("skipping checkpoint %s", reason)
        if skipped is not None:
            skipped.append(reason)
    return None


def read_packed(
    location: StorageLocation, relative: str, committed: Committed | None = None
) -> PackedCheckpoint:
    """Read a committed checkpoint into one buffer (to send through the object store).

    A file missing or of another size than its manifest says, or a ``.metadata.json`` that
    does not parse, raises CorruptCheckpointError; contents are not hashed here (see
    :func:`read_verified_packed`)."""
    committed = committed or read(location, relative)
    sources = [
        (entry.path, entry.size, _filler(location, relative, entry))
        for entry in committed.manifest.files
    ]
    metadata = _read_metadata(location, relative) or {}
    return PackedCheckpoint.from_sources(sources, metadata)


def _filler(
    location: StorageLocation, relative: str, entry: ManifestEntry
) -> Callable[[memoryview], None]:
    """Fills a view of the manifest's size with the file; another size is damage."""
    fs_path = location.path(paths.join(relative, entry.path))

    def fill_once(view: memoryview) -> None:
        with location.fs.open_input_stream(fs_path) as src:
            got = 0
            while got < len(view) and (n := src.readinto(view[got:])):
                got += n
            longer = got == len(view) and bool(src.read(1))
        if got < len(view) or longer:
            actual = f"more than {got}" if longer else str(got)
            problem = f"{entry.path}: {actual} bytes, manifest says {entry.size}"
            raise CorruptCheckpointError(location.uri(relative), [problem])

    def fill(view: memoryview) -> None:
        _read_entry(location, relative, entry, lambda: fill_once(view))

    return fill


def read_verified_packed(
    location: StorageLocation, relative: str, expected_digest: str | None = None
) -> PackedCheckpoint | None:
    """Read a committed checkpoint into one buffer and verify it there (each byte is read
    from storage once). None, with a logged reason, only when its bytes were read and failed
    verification (or it is no longer committed); a StorageError raises."""
    try:
        committed = read(location, relative)
        packed = read_packed(location, relative, committed)
    except CheckpointNotFoundError:
        logger.warning(
            "skipping checkpoint %s: no longer committed on storage", location.uri(relative)
        )
        return None
    except CorruptCheckpointError as exc:
        reason = "; ".join(exc.problems)
        logger.warning("skipping corrupt checkpoint %s: %s", exc.path, reason)
        return None
    problems = []
    if expected_digest and committed.manifest_digest != expected_digest:
        problems.append("manifest differs from the one recorded at commit")
    for entry in committed.manifest.files:
        _, hexdigest = hash_chunks(view_chunks(packed.file(entry.path)))
        if hexdigest != entry.content_hash:
            problems.append(f"{entry.path}: content hash differs from the manifest")
    if problems:
        reason = "; ".join(problems)
        logger.warning("skipping corrupt checkpoint %s: %s", location.uri(relative), reason)
        return None
    return packed
