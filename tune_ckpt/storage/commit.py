"""The checkpoint commit protocol over a StorageLocation (the experiment root), and
``CheckpointStore``, the one object callers use for checkpoints on storage.

Protocol:

* A checkpoint ``<trial>/checkpoint_NNNNNN`` exists if and only if its manifest exists.
* On local disk (and NFS), files are written into a temporary sibling
  ``<trial>/.tmp_checkpoint_NNNNNN_<id>`` and synced; the manifest is written into it last and
  the folder is renamed into place (and its parent synced), so the checkpoint appears whole
  or not at all, and once committed it survives a power loss (``storage/staging``).
* On object stores, where a folder rename is a copy, files are written in place and the
  manifest is written last. An existing manifest there is deleted first, so replacing a
  checkpoint un-commits it before touching its files.
* Listings report only folders with a manifest; ``verify`` re-hashes every file against the
  manifest and raises CorruptCheckpointError (``storage/reading``, which also says when a
  checkpoint is bad and when merely unreadable).
* ``sweep`` removes what interrupted writes left behind (``storage/sweep``); call it only for
  a trial with no writer at work.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

from tune_ckpt.storage import paths, reading, staging, sweep
from tune_ckpt.storage.local_io import (
    DurableFolder,
    fsync_path,
    subfolders_to_sync,
    write_synced,
)
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import (
    CHUNK,
    MANIFEST_NAME,
    METADATA_NAME,
    UNLISTED,
    Manifest,
    ManifestEntry,
    digest,
    file_chunks,
    hash_chunks,
    view_chunks,
)
from tune_ckpt.storage.packing import PackedCheckpoint, local_files
from tune_ckpt.storage.reading import Committed
from tune_ckpt.storage.retry import retrying
from tune_ckpt.storage.sweep import SweepReport

T = TypeVar("T")


class CheckpointStore:
    """Commit, list, verify, delete and sweep checkpoints under an experiment root."""

    def __init__(self, location: StorageLocation, guard: Callable[[], None] | None = None) -> None:
        """``guard``: called right before a commit replaces or publishes anything (a
        worker's checks that its driver holds the lease and its actor owns the trial);
        what it raises leaves every committed checkpoint as it was."""
        self.location = location
        self._guard = guard

    def _check_guard(self) -> None:
        if self._guard is not None:
            self._guard()

    def _local_call(self, operation: str, os_path: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (work on the local OS path ``os_path``) under the retry policy."""
        return retrying(self.location.retry, operation, os_path, fn)

    # -- writing ---------------------------------------------------------------------------

    def stage_local(self, relative: str) -> str:
        """A fresh temporary folder on local storage for the checkpoint ``relative``, for a
        producer that writes its files straight into storage; finish with
        :meth:`commit_staged`. Only for local storage."""
        tmp = staging.sibling(paths.check_relative(relative), staging.TMP_PREFIX)
        os_path = self.location.local_os_path(tmp)
        if os_path is None:
            raise ValueError("stage_local needs local storage")
        self.location.call("makedirs", tmp, lambda: os.makedirs(os_path, exist_ok=True))
        return os_path

    def commit_staged(
        self,
        relative: str,
        staged_dir: str,
        iteration: int | None,
        results: Sequence[dict[str, Any]] = (),
    ) -> Committed:
        """Seal a folder made by :meth:`stage_local` and filled by its producer: sync and hash
        its files, write the manifest and rename it into place as ``relative``."""

        def adopt() -> list[ManifestEntry]:
            entries = []
            with DurableFolder(staged_dir) as folder:
                for rel, _full in local_files(staged_dir):
                    if rel not in UNLISTED:
                        entries.append(ManifestEntry(rel, *folder.adopt(rel)))
            return entries

        entries = self._local_call("sync", staged_dir, adopt)
        return self._seal_local(relative, staged_dir, entries, iteration, results)

    def commit_local_dir(
        self,
        relative: str,
        local_dir: str,
        iteration: int | None,
        metadata: bytes | None = None,
        results: Sequence[dict[str, Any]] = (),
    ) -> Committed:
        """Copy a local folder to storage as the committed checkpoint ``relative``."""
        paths.check_relative(relative)
        files = [(rel, full) for rel, full in local_files(local_dir) if rel not in UNLISTED]
        if metadata is None:
            meta_path = os.path.join(local_dir, METADATA_NAME)
            if os.path.exists(meta_path):
                with open(meta_path, "rb") as f:
                    metadata = f.read()
        if self.location.is_local:
            staged = self.stage_local(relative)

            def copy_in() -> list[ManifestEntry]:
                entries = []
                with DurableFolder(staged) as folder:
                    for rel, full in files:
                        entries.append(ManifestEntry(rel, *folder.copy_in(rel, full)))
                    if metadata is not None:
                        write_synced(os.path.join(staged, METADATA_NAME), metadata)
                return entries

            entries = self._local_call("write", staged, copy_in)
            return self._seal_local(relative, staged, entries, iteration, results)
        sources = [(rel, _local_file_source(full)) for rel, full in files]
        return self._commit_in_place(relative, sources, iteration, metadata, results)

    def commit_packed(
        self,
        relative: str,
        packed: PackedCheckpoint,
        iteration: int | None,
        results: Sequence[dict[str, Any]] = (),
    ) -> Committed:
        """Write a packed checkpoint (from the object store) as the committed ``relative``."""
        paths.check_relative(relative)
        metadata = json.dumps(packed.metadata).encode() if packed.metadata else None
        if self.location.is_local:
            staged = self.stage_local(relative)

            def write_in() -> list[ManifestEntry]:
                entries = []
                with DurableFolder(staged) as folder:
                    for rel in packed.paths:
                        entries.append(ManifestEntry(rel, *folder.write_in(rel, packed.file(rel))))
                    if metadata is not None:
                        write_synced(os.path.join(staged, METADATA_NAME), metadata)
                return entries

            entries = self._local_call("write", staged, write_in)
            return self._seal_local(relative, staged, entries, iteration, results)
        sources = [(rel, _view_source(packed.file(rel))) for rel in packed.paths]
        return self._commit_in_place(relative, sources, iteration, metadata, results)

    def _seal_local(
        self,
        relative: str,
        staged_dir: str,
        entries: list[ManifestEntry],
        iteration: int | None,
        results: Sequence[dict[str, Any]],
    ) -> Committed:
        """Write the manifest into a complete, synced staging folder and rename it into
        place; then sync the folders whose entries changed."""
        manifest = Manifest(tuple(entries), iteration, results=tuple(results))
        data = manifest.to_bytes()

        def seal() -> None:
            write_synced(os.path.join(staged_dir, MANIFEST_NAME), data)
            for folder in subfolders_to_sync(staged_dir):
                fsync_path(folder)

        self._local_call("write manifest", staged_dir, seal)
        try:
            self._check_guard()
        except BaseException:
            shutil.rmtree(staged_dir, ignore_errors=True)  # never to be published
            raise
        tmp_relative = self.location.relative_to_root(self._os_to_fs(staged_dir))
        staging.publish_local(self.location, tmp_relative, relative)
        target = self.location.local_os_path(relative)
        assert target is not None
        self.location.call("sync", relative, lambda: fsync_path(os.path.dirname(target)))
        return Committed(relative, manifest, digest(data))

    def _commit_in_place(
        self,
        relative: str,
        sources: list[tuple[str, ChunkSource]],
        iteration: int | None,
        metadata: bytes | None,
        results: Sequence[dict[str, Any]],
    ) -> Committed:
        """Object stores: un-commit, write the files in place, then the manifest last."""
        paths.check_relative(relative)
        loc = self.location
        self._check_guard()
        # A reader must never see a manifest whose files are being replaced.
        loc.delete_file(paths.join(relative, MANIFEST_NAME))
        loc.delete_dir(relative)
        loc.makedirs(relative)
        entries = []
        buffer = bytearray(CHUNK)
        for rel, source in sources:
            fs_path = loc.path(paths.join(relative, rel))

            # Sources are replayable, so a retry writes the whole file again.
            def write_file(fs_path: str = fs_path, source: ChunkSource = source) -> tuple[int, str]:
                parent = paths.parent(fs_path)
                if parent:
                    loc.fs.create_dir(parent, recursive=True)
                with loc.fs.open_output_stream(fs_path) as out:
                    return source(buffer, out.write)

            size, content_hash = loc.call("write", paths.join(relative, rel), write_file)
            entries.append(ManifestEntry(rel, size, content_hash))
        if metadata is not None:
            loc.write_bytes(paths.join(relative, METADATA_NAME), metadata)
        manifest = Manifest(tuple(entries), iteration, results=tuple(results))
        data = manifest.to_bytes()
        self._check_guard()
        loc.write_bytes(paths.join(relative, MANIFEST_NAME), data)
        return Committed(relative, manifest, digest(data))

    def _os_to_fs(self, os_path: str) -> str:
        """The fs path of an OS path under local storage (undoing a SubTreeFileSystem)."""
        root_os = self.location.local_os_path("")
        assert root_os is not None
        rel = os.path.relpath(os_path, root_os).replace(os.sep, "/")
        return self.location.path(rel)

    # -- reading (storage/reading) ---------------------------------------------------------

    def list_committed(self, trial_relative: str) -> list[str]:
        """Relative paths of the committed checkpoints of a trial, oldest first."""
        return reading.list_committed(self.location, trial_relative)

    def read(self, relative: str) -> Committed:
        """The manifest of a committed checkpoint: CheckpointNotFoundError without one,
        CorruptCheckpointError when it does not parse."""
        return reading.read(self.location, relative)

    def verify(self, relative: str, expected_digest: str | None = None) -> Committed:
        """Check every file of the checkpoint against its manifest: CorruptCheckpointError
        listing each problem, StorageError when it cannot be read now
        (:func:`tune_ckpt.storage.reading.verify`)."""
        return reading.verify(self.location, relative, expected_digest)

    def newest_verified(
        self,
        candidates: Iterable[str],
        expected_digests: dict[str, str] | None = None,
        skipped: list[str] | None = None,
    ) -> Committed | None:
        """The first of ``candidates`` (give them newest first) that verifies; bad ones are
        skipped with a logged reason, also appended to ``skipped``
        (:func:`tune_ckpt.storage.reading.newest_verified`)."""
        return reading.newest_verified(self.location, candidates, expected_digests, skipped)

    def read_packed(self, relative: str, committed: Committed | None = None) -> PackedCheckpoint:
        """Read a committed checkpoint into one buffer, sizes checked but contents not
        hashed (:func:`tune_ckpt.storage.reading.read_packed`)."""
        return reading.read_packed(self.location, relative, committed)

    def read_verified_packed(
        self, relative: str, expected_digest: str | None = None
    ) -> PackedCheckpoint | None:
        """Read a committed checkpoint into one buffer and verify it there; None, with a
        logged reason, when it is bad (:func:`tune_ckpt.storage.reading.read_verified_packed`)."""
        return reading.read_verified_packed(self.location, relative, expected_digest)

    # -- removing --------------------------------------------------------------------------

    def delete(self, relative: str) -> None:
        """Delete a checkpoint: the manifest first (un-commit), then the files."""
        self.location.delete_file(paths.join(relative, MANIFEST_NAME))
        self.location.delete_dir(relative)

    def sweep(self, trial_relative: str, dry_run: bool = False) -> list[str]:
        """Remove leftovers of interrupted writes under a trial: temporary and trash folders,
        and checkpoint folders without a manifest. A sealed temporary folder whose rename into
        place was interrupted is published instead. Returns what was removed; with
        ``dry_run``, changes nothing and returns what would be removed."""
        return list(self.sweep_report(trial_relative, dry_run).removed)

    def sweep_report(
        self, trial_relative: str, dry_run: bool = False, keep: Collection[str] = ()
    ) -> SweepReport:
        """:meth:`sweep`, reporting what was published as well as what was removed (or,
        with ``dry_run``, what would be, without changing anything). Folders named in
        ``keep`` (relative paths) are not removed but reported as kept."""
        return sweep.sweep_report(self.location, trial_relative, dry_run, keep)


ChunkSource = Callable[[bytearray, Callable[[memoryview], object]], tuple[int, str]]
"""Streams one file's bytes to a writer (using the given buffer if it needs one) and returns
(size, content hash)."""


def _local_file_source(path: str) -> ChunkSource:
    def source(buffer: bytearray, write: Callable[[memoryview], object]) -> tuple[int, str]:
        with open(path, "rb", buffering=0) as src:
            return hash_chunks(file_chunks(src, buffer), write)

    return source


def _view_source(view: memoryview) -> ChunkSource:
    def source(_buffer: bytearray, write: Callable[[memoryview], object]) -> tuple[int, str]:
        return hash_chunks(view_chunks(view), write)

    return source
