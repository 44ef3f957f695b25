"""Checkpoint: the handle users save and load, a directory on some filesystem or a dict.

Three forms, all interchangeable:

* a directory on a filesystem (local, S3, ...): ``Checkpoint.from_directory(path)``;
* an in-memory dict: ``Checkpoint.from_dict(d)``;
* a packed buffer that came through Ray's object store (``Checkpoint.from_packed``).

A dict checkpoint materialised as a directory is one pickle file, ``dict_checkpoint.pkl``; a
plain directory read as a dict is ``{FILES_KEY: {relative path: bytes}}``, which materialises
back into the same files. So every form can become every other one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow.fs as pafs

from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import METADATA_NAME, UNLISTED
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.storage.paths import check_relative

DICT_FILE = "dict_checkpoint.pkl"
"""The file a dict checkpoint becomes inside a directory."""

FILES_KEY = "_tune_ckpt_files"
"""The key under which a plain directory's files appear when it is read as a dict."""


def _check_json(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata={metadata!r} is invalid: a dict of JSON values")
    try:
        json.dumps(metadata, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metadata is invalid: {exc}; metadata must hold only JSON values "
            "(dict, list, str, int, float, bool, None)"
        ) from exc
    return json.loads(json.dumps(metadata))


def _bytes_filler(data: bytes) -> Callable[[memoryview], None]:
    def fill(view: memoryview) -> None:
        view[:] = data

    return fill


class Checkpoint:
    """A checkpoint: a directory on a filesystem, or an in-memory dict.

    Create one with :meth:`from_directory`, :meth:`from_dict` or :meth:`from_packed`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        filesystem: pafs.FileSystem | None = None,
    ) -> None:
        self._path: str | None = None
        self._fs: pafs.FileSystem | None = None
        # Every call on the directory goes through it, so transient errors are retried.
        self._location: StorageLocation | None = None
        self._dict: dict[str, Any] | None = None
        self._packed: PackedCheckpoint | None = None
        self._metadata: dict[str, Any] | None = None
        if path is not None:
            if filesystem is None:
                location = StorageLocation.resolve(os.fspath(path))
            else:
                resolved = os.fspath(path).rstrip("/")
                location = StorageLocation(filesystem, resolved, resolved)
            self._at(location)

    def _at(self, location: StorageLocation) -> Checkpoint:
        self._location, self._path, self._fs = location, location.root, location.fs
        return self

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_directory(
        cls, path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> Checkpoint:
        """A checkpoint for an existing directory: a local path, a URI (``s3://...``), or a
        path inside ``filesystem``. The directory is used in place, not copied."""
        return cls(path, filesystem)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """An in-memory checkpoint holding ``data`` (any picklable values)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Checkpoint.from_dict(data={data!r}) is invalid: a dict is needed")
        checkpoint = cls()
        checkpoint._dict = dict(data)
        return checkpoint

    @classmethod
    def at(cls, location: StorageLocation) -> Checkpoint:
        """The checkpoint directory at ``location``'s root, its calls retried under the
        location's policy (the experiment's ``RunConfig(storage_retry=...)``)."""
        return cls()._at(location)

    @classmethod
    def from_packed(cls, packed: PackedCheckpoint) -> Checkpoint:
        """A checkpoint over a packed buffer (as received through the object store)."""
        checkpoint = cls()
        checkpoint._packed = packed
        checkpoint._metadata = dict(packed.metadata)
        return checkpoint

    # -- properties ------------------------------------------------------------------------

    @property
    def path(self) -> str | None:
        """The directory's path inside :attr:`filesystem`; None for in-memory checkpoints."""
        return self._path

    @property
    def filesystem(self) -> pafs.FileSystem | None:
        """The pyarrow filesystem holding the directory; None for in-memory checkpoints."""
        return self._fs

    @property
    def is_dict(self) -> bool:
        """True for a checkpoint made by :meth:`from_dict`, or a directory holding one."""
        if self._dict is not None:
            return True
        if self._packed is not None:
            return DICT_FILE in self._packed.paths
        return self._is_file(DICT_FILE)

    def _local_dir(self) -> str | None:
        if self._path is not None and isinstance(self._fs, pafs.LocalFileSystem):
            return self._path
        return None

    def _is_file(self, name: str) -> bool:
        return self._location is not None and self._location.is_file(name)

    # -- conversions -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint as a dict: the original for dict checkpoints, else
        ``{FILES_KEY: {relative path: bytes}}`` for a plain directory."""
        if self._dict is not None:
            return dict(self._dict)
        packed = self.pack()
        if DICT_FILE in packed.paths:
            loaded: dict[str, Any] = pickle.loads(packed.file(DICT_FILE))
            return loaded
        return {FILES_KEY: {rel: bytes(packed.file(rel)) for rel in packed.paths}}

    def to_directory(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the checkpoint into a local directory (a new temporary one when ``path`` is
        None) and return its path."""
        target = os.fspath(path) if path is not None else tempfile.mkdtemp(prefix="checkpoint_")
        os.makedirs(target, exist_ok=True)
        local = self._local_dir()
        if self._dict is not None:
            if set(self._dict) == {FILES_KEY}:
                files = self._dict[FILES_KEY]
                # All checked before any is written: a '../' name must not escape ``target``.
                for rel in files:
                    check_relative(rel)
                for rel, data in files.items():
                    dest = os.path.join(target, *rel.split("/"))
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with open(dest, "wb") as out:
                        out.write(data)
            else:
                with open(os.path.join(target, DICT_FILE), "wb") as out:
                    pickle.dump(self._dict, out, protocol=pickle.HIGHEST_PROTOCOL)
        elif local is not None:
            if os.path.abspath(local) != os.path.abspath(target):
                shutil.copytree(
                    local,
                    target,
                    dirs_exist_ok=True,
                    ignore=lambda _d, names: [n for n in names if n in UNLISTED],
                )
        elif self._packed is not None:
            self._packed.write_to_local_dir(target)
        elif self._path is not None:
            # Through pack(): one read per file, and the manifest and metadata files stay
            # behind, as they do for a local directory.
            self.pack().write_to_local_dir(target)
        metadata = self.get_metadata()
        if metadata:
            with open(os.path.join(target, METADATA_NAME), "w") as out:
                json.dump(metadata, out)
        return target

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """A local directory holding the checkpoint for the duration of the block: the
        directory itself when it is already local, else a temporary copy removed after."""
        local = self._local_dir()
        if local is not None:
            yield local
            return
        tmp = self.to_directory()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def pack(self) -> PackedCheckpoint:
        """The checkpoint as one buffer and an index, to send through Ray's object store."""
        if self._packed is not None:
            return self._packed
        metadata = self.get_metadata()
        if self._dict is not None:
            if set(self._dict) == {FILES_KEY}:
                # A directory read as a dict packs as its files, as to_directory writes it.
                files = sorted(self._dict[FILES_KEY].items())
                return PackedCheckpoint.from_sources(
                    [(rel, len(data), _bytes_filler(data)) for rel, data in files], metadata
                )
            data = pickle.dumps(self._dict, protocol=pickle.HIGHEST_PROTOCOL)
            return PackedCheckpoint(((DICT_FILE, 0, len(data)),), data, metadata)
        local = self._local_dir()
        if local is not None:
            return PackedCheckpoint.from_local_dir(local, metadata)
        location = self._location
        assert location is not None
        sources = []
        for info in location.list_dir("", recursive=True):
            if info.type != pafs.FileType.File:
                continue
            rel = location.relative_to_root(info.path)
            if rel in UNLISTED:
                continue
            sources.append((rel, info.size, location.filler(rel)))
        return PackedCheckpoint.from_sources(sorted(sources, key=lambda s: s[0]), metadata)

    # -- metadata --------------------------------------------------------------------------

    def get_metadata(self) -> dict[str, Any]:
        """The user metadata (a JSON dict; empty when none was set)."""
        if self._metadata is None:
            self._metadata = {}
            if self._location is not None and self._is_file(METADATA_NAME):
                self._metadata = json.loads(self._location.read_bytes(METADATA_NAME))
        return dict(self._metadata)

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Replace the user metadata. JSON values only; written next to the files of a
        directory checkpoint (the manifest does not cover it, so a committed checkpoint
        stays valid)."""
        self._metadata = _check_json(metadata)
        if self._location is not None:
            self._location.write_bytes(METADATA_NAME, json.dumps(self._metadata).encode())

    def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into the user metadata (JSON values only)."""
        merged = self.get_metadata()
        merged.update(_check_json(metadata))
        self.set_metadata(merged)

    # -- plumbing --------------------------------------------------------------------------

    def __repr__(self) -> str:
        if self._dict is not None:
            return f"Checkpoint(dict, keys={sorted(self._dict)[:5]})"
        if self._packed is not None:
            return f"Checkpoint(packed, {self._packed.nbytes} bytes)"
        return f"Checkpoint(path={self._path!r})"
