"""The checkpoint commit protocol over a StorageLocation (the experiment root).

Protocol:

* A checkpoint ``<trial>/checkpoint_NNNNNN`` exists if and only if its manifest exists.
* On local disk (and NFS), files are written into a temporary sibling
  ``<trial>/.tmp_checkpoint_NNNNNN_<id>`` and synced; the manifest is written into it last and
  the folder is renamed into place (and its parent synced), so the checkpoint appears whole
  or not at all, and once committed it survives a power loss.
* On object stores, where a folder rename is a copy, files are written in place and the
  manifest is written last. An existing manifest there is deleted first, so replacing a
  checkpoint un-commits it before touching its files.
* Listings report only folders with a manifest. ``sweep`` removes what interrupted writes
  left behind; call it only for a trial with no writer at work.
* ``verify`` re-hashes every file against the manifest and raises CorruptCheckpointError.

Bad versus unreadable: a checkpoint is bad (CorruptCheckpointError, or CheckpointNotFoundError
without a manifest) only when its bytes were read and failed verification: a file missing,
resized or altered, a manifest or ``.metadata.json`` that does not parse. Every storage call
retries transient errors under the location's policy; a StorageError that still comes out
means the checkpoint cannot be read now, and it always propagates: an outage is not damage.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
from tune_ckpt.storage.retry import retrying

logger = logging.getLogger(__name__)

T = TypeVar("T")

TMP_PREFIX = ".tmp_checkpoint_"
TRASH_PREFIX = ".trash_checkpoint_"


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


@dataclass(frozen=True)
class SweepReport:
    """What a sweep of one trial removed and published (or would, in a dry run).

    Attributes:
        removed: relative paths of the leftovers removed.
        published: ``(temporary folder, checkpoint)`` relative paths of each sealed temporary
            folder renamed into place.
        kept: checkpoint folders without a manifest left in place because the caller named
            them in ``keep`` (the journal records them as committed).
    """

    removed: tuple[str, ...]
    published: tuple[tuple[str, str], ...]
    kept: tuple[str, ...] = ()


class CheckpointStore:
    """Commit, list, verify, delete and sweep checkpoints under an experiment root."""

    def __init__(self, location: StorageLocation) -> None:
        self.location = location

    def _local_call(self, operation: str, os_path: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (work on the local OS path ``os_path``) under the retry policy."""
        return retrying(self.location.retry, operation, os_path, fn)

    # -- writing ---------------------------------------------------------------------------

    def stage_local(self, relative: str) -> str:
        """A fresh temporary folder on local storage for the checkpoint ``relative``, for a
        producer that writes its files straight into storage; finish with
        :meth:`commit_staged`. Only for local storage."""
        tmp = self._tmp_sibling(paths.check_relative(relative))
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
        tmp_relative = self.location.relative_to_root(self._os_to_fs(staged_dir))
        self._publish_local(tmp_relative, relative)
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
        loc.write_bytes(paths.join(relative, MANIFEST_NAME), data)
        return Committed(relative, manifest, digest(data))

    def _tmp_sibling(self, relative: str) -> str:
        return _sibling(relative, TMP_PREFIX)

    def _os_to_fs(self, os_path: str) -> str:
        """The fs path of an OS path under local storage (undoing a SubTreeFileSystem)."""
        root_os = self.location.local_os_path("")
        assert root_os is not None
        rel = os.path.relpath(os_path, root_os).replace(os.sep, "/")
        return self.location.path(rel)

    def _publish_local(self, tmp_relative: str, relative: str) -> None:
        """Rename a complete temporary folder into place (atomic on POSIX and NFS)."""
        loc = self.location
        parent = paths.parent(relative)
        if parent:
            loc.makedirs(parent)
        if loc.exists(relative):
            # Replacing (only ever a checkpoint that failed verification): move the old
            # one aside first; a rename onto a non-empty folder fails on POSIX.
            trash = _sibling(relative, TRASH_PREFIX)
            loc.move(relative, trash)
            loc.move(tmp_relative, relative)
            loc.delete_dir(trash)
        else:
            loc.move(tmp_relative, relative)

    # -- reading ---------------------------------------------------------------------------

    def list_committed(self, trial_relative: str) -> list[str]:
        """Relative paths of the committed checkpoints of a trial, oldest first."""
        found = []
        for info in self.location.list_dir(trial_relative):
            if info.type != pafs.FileType.Directory:
                continue
            name = paths.basename(info.path)
            iteration = paths.parse_checkpoint_dirname(name)
            if iteration is None:
                continue
            relative = paths.join(trial_relative, name)
            if self.location.is_file(paths.join(relative, MANIFEST_NAME)):
                found.append((iteration, relative))
        return [rel for _, rel in sorted(found)]

    def read(self, relative: str) -> Committed:
        """The manifest of a committed checkpoint: CheckpointNotFoundError without one,
        CorruptCheckpointError when it does not parse."""
        manifest_path = paths.join(relative, MANIFEST_NAME)
        try:
            data = self.location.read_bytes(manifest_path)
        except StorageNotFoundError as exc:
            # A missing manifest means "not committed"; a missing bucket is a storage error,
            # which listing the folder raises. Other storage errors propagate as they are.
            self.location.list_dir(relative)
            raise CheckpointNotFoundError(self.location.uri(relative)) from exc
        manifest = Manifest.from_bytes(data, self.location.uri(relative))
        return Committed(relative, manifest, digest(data))

    def _read_entry(self, relative: str, entry: ManifestEntry, read_once: Callable[[], T]) -> T:
        """Read one listed file with ``read_once`` under the retry policy. A file that is not
        there raises CorruptCheckpointError; one that cannot be read now, StorageError."""
        loc = self.location
        rel = paths.join(relative, entry.path)
        try:
            return loc.call("read", rel, read_once)
        except StorageError as exc:
            # Only a permanent error on a file that is really gone makes the checkpoint bad.
            if exc.transient or loc.exists(rel):
                raise
            problem = f"{entry.path}: missing ({exc.cause})"
            raise CorruptCheckpointError(loc.uri(relative), [problem]) from exc

    def _read_metadata(self, relative: str) -> dict[str, Any] | None:
        """The checkpoint's parsed ``.metadata.json`` (None without one); one that does not
        parse as a JSON object raises CorruptCheckpointError."""
        try:
            data = self.location.read_bytes(paths.join(relative, METADATA_NAME))
        except StorageNotFoundError:
            return None
        try:
            metadata = json.loads(data)
        except ValueError as exc:
            problem = f"{METADATA_NAME} does not parse: {exc}"
            raise CorruptCheckpointError(self.location.uri(relative), [problem]) from exc
        if not isinstance(metadata, dict):
            problem = f"{METADATA_NAME} holds a {type(metadata).__name__}, not a JSON object"
            raise CorruptCheckpointError(self.location.uri(relative), [problem])
        return metadata

    def verify(self, relative: str, expected_digest: str | None = None) -> Committed:
        """Check every file of the checkpoint against its manifest.

        Raises CorruptCheckpointError listing each missing, resized or altered file, a
        ``.metadata.json`` that does not parse (and a manifest that differs from
        ``expected_digest`` when given); StorageError when it cannot be read now.
        """
        committed = self.read(relative)
        problems = []
        if expected_digest and committed.manifest_digest != expected_digest:
            problems.append("manifest differs from the one recorded at commit")
        loc = self.location
        buffer = bytearray(CHUNK)
        for entry in committed.manifest.files:
            rel = paths.join(relative, entry.path)

            def hash_file(rel: str = rel) -> tuple[int, str]:
                with loc.fs.open_input_stream(loc.path(rel)) as src:
                    return hash_chunks(file_chunks(src, buffer))

            try:
                size, hexdigest = self._read_entry(relative, entry, hash_file)
            except CorruptCheckpointError as exc:
                problems.extend(exc.problems)
                continue
            if size != entry.size:
                problems.append(f"{entry.path}: {size} bytes, manifest says {entry.size}")
            elif hexdigest != entry.content_hash:
                problems.append(f"{entry.path}: content hash differs from the manifest")
        try:
            self._read_metadata(relative)
        except CorruptCheckpointError as exc:
            problems.extend(exc.problems)
        if problems:
            raise CorruptCheckpointError(loc.uri(relative), problems)
        return committed

    def newest_verified(
        self,
        candidates: Iterable[str],
        expected_digests: dict[str, str] | None = None,
        skipped: list[str] | None = None,
    ) -> Committed | None:
        """The first of ``candidates`` (give them newest first) that verifies. Each bad one
        is skipped with a logged reason, also appended to ``skipped``; a StorageError
        (storage unreadable now, after the retries) raises instead of skipping."""
        for relative in candidates:
            try:
                return self.verify(relative, (expected_digests or {}).get(relative))
            except CorruptCheckpointError as exc:
                reason = f"{exc.path}: corrupt: " + "; ".join(exc.problems)
            except CheckpointNotFoundError as exc:
                reason = f"{exc.path}: no longer committed on storage"
            logger.warning("skipping checkpoint %s", reason)
            if skipped is not None:
                skipped.append(reason)
        return None

    def read_packed(self, relative: str, committed: Committed | None = None) -> PackedCheckpoint:
        """Read a committed checkpoint into one buffer (to send through the object store).

        A file missing or of another size than its manifest says, or a ``.metadata.json``
        that does not parse, raises CorruptCheckpointError; contents are not hashed here
        (see :meth:`read_verified_packed`)."""
        committed = committed or self.read(relative)
        sources = [
            (entry.path, entry.size, self._filler(relative, entry))
            for entry in committed.manifest.files
        ]
        metadata = self._read_metadata(relative) or {}
        return PackedCheckpoint.from_sources(sources, metadata)

    def _filler(self, relative: str, entry: ManifestEntry) -> Callable[[memoryview], None]:
        """Fills a view of the manifest's size with the file; another size is damage."""
        loc = self.location
        fs_path = loc.path(paths.join(relative, entry.path))

        def fill_once(view: memoryview) -> None:
            with loc.fs.open_input_stream(fs_path) as src:
                got = 0
                while got < len(view) and (n := src.readinto(view[got:])):
                    got += n
                longer = got == len(view) and bool(src.read(1))
            if got < len(view) or longer:
                actual = f"more than {got}" if longer else str(got)
                problem = f"{entry.path}: {actual} bytes, manifest says {entry.size}"
                raise CorruptCheckpointError(loc.uri(relative), [problem])

        def fill(view: memoryview) -> None:
            self._read_entry(relative, entry, lambda: fill_once(view))

        return fill

    def read_verified_packed(
        self, relative: str, expected_digest: str | None = None
    ) -> PackedCheckpoint | None:
        """Read a committed checkpoint into one buffer and verify it there (each byte is
        read from storage once). None, with a logged reason, only when its bytes were read
        and failed verification (or it is no longer committed); a StorageError raises."""
        try:
            committed = self.read(relative)
            packed = self.read_packed(relative, committed)
        except CheckpointNotFoundError:
            logger.warning(
                "skipping checkpoint %s: no longer committed on storage",
                self.location.uri(relative),
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
            logger.warning(
                "skipping corrupt checkpoint %s: %s", self.location.uri(relative), reason
            )
            return None
        return packed

    # -- removing --------------------------------------------------------------------------

    def delete(self, relative: str) -> None:
        """Delete a checkpoint: the manifest first (un-commit), then the files."""
        self.location.delete_file(paths.join(relative, MANIFEST_NAME))
        self.location.delete_dir(relative)

    def _publish_target(self, trial_relative: str, name: str, taken: set[str]) -> str | None:
        """The checkpoint a sealed temporary folder (manifest written) should become: its
        rename was interrupted while it replaced a checkpoint, so it is published rather
        than lost. None for anything else, or when ``taken`` (targets already planned) or a
        committed checkpoint already holds that name."""
        target = _published_name(name)
        if target is None or not self.location.is_local:
            return None
        target_relative = paths.join(trial_relative, target)
        if target_relative in taken:
            return None
        sealed = self.location.is_file(paths.join(trial_relative, name, MANIFEST_NAME))
        if not sealed or self.location.is_file(paths.join(target_relative, MANIFEST_NAME)):
            return None
        return target_relative

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
        entries = self.location.list_dir(trial_relative)
        published: list[tuple[str, str]] = []
        taken: set[str] = set()
        # Publishing is decided first, so a manifest-less folder about to be replaced by a
        # publish is not also counted as removed, and a dry run reports what a real one does.
        for info in entries:
            name = paths.basename(info.path)
            target = self._publish_target(trial_relative, name, taken)
            if target is not None:
                tmp_relative = paths.join(trial_relative, name)
                if not dry_run:
                    self._publish_local(tmp_relative, target)
                published.append((tmp_relative, target))
                taken.add(target)
        sources = {tmp for tmp, _ in published}
        removed = []
        kept = []
        for info in entries:
            name = paths.basename(info.path)
            relative = paths.join(trial_relative, name)
            if relative in sources or relative in taken:
                continue
            leftover = name.startswith((TMP_PREFIX, TRASH_PREFIX)) or (
                paths.parse_checkpoint_dirname(name) is not None
                and info.type == pafs.FileType.Directory
                and not self.location.is_file(paths.join(relative, MANIFEST_NAME))
            )
            if not leftover:
                continue
            if relative in keep:
                kept.append(relative)
                continue
            removed.append(relative)
            if dry_run:
                continue
            if info.type == pafs.FileType.Directory:
                self.location.delete_dir(relative)
            else:
                self.location.delete_file(relative)
        return SweepReport(tuple(removed), tuple(published), tuple(kept))


class BackgroundDeleter:
    """Deletes checkpoints in a helper thread, in the order asked, so a driver loop does not
    wait on storage for what retention drops. A failed deletion leaves an extra checkpoint,
    never a missing one; it is logged with its path and cause, and the next listing or
    retention pass sees the checkpoint again."""

    def __init__(self, store: CheckpointStore) -> None:
        self._store = store
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []

    def delete(self, relative: str) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tune_ckpt-delete")
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._pool.submit(self._delete, relative))

    def _delete(self, relative: str) -> None:
        try:
            self._store.delete(relative)
        except StorageError as exc:
            logger.warning("could not delete checkpoint %s: %s", exc.path, exc.cause)

    def wait(self) -> None:
        """Block until every deletion asked for so far is done."""
        for future in self._futures:
            future.result()
        self._futures = []

    def close(self) -> None:
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _published_name(tmp_name: str) -> str | None:
    """``checkpoint_NNNNNN`` for a temporary folder name ``.tmp_checkpoint_NNNNNN_<id>``."""
    if not tmp_name.startswith(TMP_PREFIX):
        return None
    number = tmp_name[len(TMP_PREFIX) :].split("_", 1)[0]
    return f"{paths.CHECKPOINT_PREFIX}{number}" if number.isdigit() else None


def _sibling(relative: str, prefix: str) -> str:
    """A uniquely named hidden sibling of ``relative`` (``<prefix>NNNNNN_<id>``)."""
    parent, name = paths.parent(relative), paths.basename(relative)
    unique = f"{prefix}{name.removeprefix(paths.CHECKPOINT_PREFIX)}_{uuid.uuid4().hex[:8]}"
    return paths.join(parent, unique) if parent else unique


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
