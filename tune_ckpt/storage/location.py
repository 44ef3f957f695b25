"""StorageLocation: a pyarrow filesystem plus a root, resolved once from what the user gave.

Everything below the root is addressed by relative paths (see ``paths``). Every operation
translates backend errors into ``tune_ckpt.errors.STORAGE_ERRORS`` and retries the transient
ones under the location's :class:`~tune_ckpt.config.StorageRetry` (see ``retry``).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow.fs as pafs

from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import StorageError
from tune_ckpt.storage import paths
from tune_ckpt.storage.retry import backend_errors, retrying, translate_error

__all__ = ["DEFAULT_STORAGE_PATH", "StorageLocation", "backend_errors", "translate_error"]

DEFAULT_STORAGE_PATH = "~/tune_ckpt_results"

T = TypeVar("T")


def _s3_from_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """An S3 filesystem for ``s3://bucket/prefix[?options]``.

    pyarrow reads credentials and region from the usual AWS variables but ignores
    ``AWS_ENDPOINT_URL`` (apache/arrow#49643), so the endpoint is taken from there unless the
    URI names one.
    """
    parsed = urllib.parse.urlsplit(uri)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_override" not in query:
        ep = urllib.parse.urlsplit(endpoint)
        if ep.scheme:
            query.setdefault("scheme", ep.scheme)
            query["endpoint_override"] = ep.netloc + ep.path.rstrip("/")
        else:
            query["endpoint_override"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region and "region" not in query:
        query["region"] = region
    rebuilt = urllib.parse.urlunsplit(
        (parsed.scheme, parsed.netloc, parsed.path, urllib.parse.urlencode(query), "")
    )
    fs, root = pafs.FileSystem.from_uri(rebuilt)
    return fs, root


def _display(uri: str) -> str:
    """A URI fit to show and log: no query (it may hold options) and no user info (it may
    hold credentials, ``s3://key:secret@bucket``)."""
    parsed = urllib.parse.urlsplit(uri.split("?", 1)[0])
    netloc = parsed.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", "")).rstrip("/")


@dataclass(frozen=True)
class StorageLocation:
    """A filesystem and a root path in it. Picklable, so workers can use it too.

    Attributes:
        fs: the pyarrow filesystem.
        root: the root's path inside ``fs`` (no trailing slash; ``""`` for the fs root).
        display_root: how to show the root to a person (a local path or a URI).
        retry: how long every operation retries transient errors.
    """

    fs: Any
    root: str
    display_root: str
    retry: StorageRetry = field(default_factory=StorageRetry)

    @classmethod
    def resolve(
        cls,
        storage_path: str | os.PathLike[str] | None = None,
        storage_filesystem: pafs.FileSystem | None = None,
        retry: StorageRetry | None = None,
    ) -> StorageLocation:
        """Resolve a local path, ``file://`` or ``scheme://`` URI, or a path inside a given
        filesystem. The default is ``~/tune_ckpt_results`` on local disk, and the default
        ``StorageRetry()`` policy."""
        policy = StorageRetry() if retry is None else retry
        if storage_filesystem is not None:
            root = os.fspath(storage_path) if storage_path is not None else ""
            root = root.rstrip("/")
            display = f"{storage_filesystem.type_name}:{root or '/'}"
            return cls(storage_filesystem, root, display, policy)
        raw = os.fspath(storage_path) if storage_path is not None else DEFAULT_STORAGE_PATH
        if "://" not in raw:
            local = os.path.abspath(os.path.expanduser(raw))
            return cls(pafs.LocalFileSystem(), local.rstrip("/") or "/", local, policy)
        scheme = raw.split("://", 1)[0].lower()
        with backend_errors(raw):
            if scheme == "s3":
                fs, root = _s3_from_uri(raw)
            else:
                fs, root = pafs.FileSystem.from_uri(raw)
        return cls(fs, root.rstrip("/"), _display(raw), policy)

    @property
    def is_local(self) -> bool:
        """True when the filesystem is the local disk (so rename is atomic, files are
        visible at an OS path)."""
        return self.local_os_path("") is not None

    def local_os_path(self, relative: str) -> str | None:
        """The OS path of ``relative`` when the storage is the local disk, else None."""
        fs, prefix = self.fs, ""
        if isinstance(fs, pafs.SubTreeFileSystem):
            prefix = fs.base_path.rstrip("/")
            fs = fs.base_fs
        if not isinstance(fs, pafs.LocalFileSystem):
            return None
        base = self.root if not prefix else f"{prefix}/{self.root.lstrip('/')}".rstrip("/")
        return paths.join_under(base, relative) if relative else base

    def path(self, relative: str) -> str:
        """The filesystem path of ``relative`` under the root."""
        return paths.join_under(self.root, relative) if relative else self.root

    def uri(self, relative: str = "") -> str:
        """A human-readable location of ``relative`` (a local path or a URI)."""
        if not relative:
            return self.display_root
        return f"{self.display_root.rstrip('/')}/{paths.check_relative(relative)}"

    def child(self, relative: str) -> StorageLocation:
        """The location rooted at ``relative`` under this root."""
        return StorageLocation(self.fs, self.path(relative), self.uri(relative), self.retry)

    # -- operations: backend errors translated, transient ones retried -------------------

    def call(self, operation: str, relative: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, one attempt of ``operation`` on ``relative``, under this location's
        retry policy; backend errors raise as StorageErrors naming ``relative``'s URI. ``fn``
        must be safe to run again from its start."""
        return retrying(self.retry, operation, self.uri(relative), fn)

    def _info(self, relative: str) -> pafs.FileInfo:
        return self.call("stat", relative, lambda: self.fs.get_file_info(self.path(relative)))

    def exists(self, relative: str) -> bool:
        return bool(self._info(relative).type != pafs.FileType.NotFound)

    def is_file(self, relative: str) -> bool:
        return bool(self._info(relative).type == pafs.FileType.File)

    def makedirs(self, relative: str = "") -> None:
        self.call(
            "makedirs", relative, lambda: self.fs.create_dir(self.path(relative), recursive=True)
        )

    def read_bytes(self, relative: str) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.path(relative)) as stream:
                return bytes(stream.readall())

        return self.call("read", relative, read)

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write a whole file. On local disk via a temporary sibling renamed into place, so a
        reader never sees half a file; object stores publish an object whole anyway."""
        self.call("write", relative, lambda: self._write(relative, data))

    def _write(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        parent = paths.parent(target)
        if parent:
            self.fs.create_dir(parent, recursive=True)
        if self.is_local:
            tmp = f"{target}.tmp-{os.getpid()}"
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, target)
        else:
            with self.fs.open_output_stream(target) as out:
                out.write(data)

    def append_bytes(self, relative: str, data: bytes) -> None:
        """Append to a file: in place on local disk, by rewriting the object elsewhere
        (object stores have no append). A retried append never repeats what an interrupted
        attempt wrote: on disk the file is cut back to its size before the first attempt;
        on object stores the content read once is rewritten with ``data``."""
        target = self.path(relative)
        os_path = self.local_os_path(relative)
        if os_path is not None:
            size_before: list[int] = []

            def append_local() -> None:
                if not size_before:
                    parent = paths.parent(target)
                    if parent:
                        self.fs.create_dir(parent, recursive=True)
                    info = self.fs.get_file_info(target)
                    size_before.append(info.size if info.type == pafs.FileType.File else 0)
                elif os.path.exists(os_path) and os.path.getsize(os_path) > size_before[0]:
                    os.truncate(os_path, size_before[0])
                with self.fs.open_append_stream(target) as out:
                    out.write(data)

            self.call("append", relative, append_local)
            return
        old: list[bytes] = []

        def rewrite() -> None:
            if not old:
                info = self.fs.get_file_info(target)
                if info.type == pafs.FileType.NotFound:
                    old.append(b"")
                else:
                    with self.fs.open_input_stream(target) as stream:
                        old.append(bytes(stream.readall()))
            self._write(relative, old[0] + data)

        self.call("append", relative, rewrite)

    def filler(self, relative: str) -> Callable[[memoryview], None]:
        """A function that fills a memoryview with the file's bytes; the view's length must
        be the file's size (a shorter file raises StorageError)."""

        def fill_once(view: memoryview) -> None:
            with self.fs.open_input_stream(self.path(relative)) as src:
                got = 0
                while got < len(view):
                    n = src.readinto(view[got:])
                    if not n:
                        raise StorageError(self.uri(relative), f"file ended after {got} bytes")
                    got += n

        def fill(view: memoryview) -> None:
            self.call("read", relative, lambda: fill_once(view))

        return fill

    def delete_file(self, relative: str, missing_ok: bool = True) -> None:
        def delete() -> None:
            try:
                self.fs.delete_file(self.path(relative))
            except FileNotFoundError:
                if not missing_ok:
                    raise

        self.call("delete", relative, delete)

    def delete_dir(self, relative: str, missing_ok: bool = True) -> None:
        def delete() -> None:
            try:
                self.fs.delete_dir(self.path(relative))
            except FileNotFoundError:
                if not missing_ok:
                    raise

        self.call("delete folder", relative, delete)

    def move(self, src_relative: str, dst_relative: str) -> None:
        """Rename ``src_relative`` to ``dst_relative`` (atomic on local disk)."""
        self.call(
            "move",
            dst_relative,
            lambda: self.fs.move(self.path(src_relative), self.path(dst_relative)),
        )

    def list_dir(self, relative: str = "", recursive: bool = False) -> list[pafs.FileInfo]:
        """Entries under ``relative`` (empty when it does not exist). A missing bucket, or a
        path under a regular file, raises a StorageError instead of listing as empty."""
        # Not allow_not_found=True: pyarrow's S3 then also lists a missing bucket as empty.
        selector = pafs.FileSelector(self.path(relative), recursive=recursive)

        def list_entries() -> list[pafs.FileInfo]:
            try:
                return list(self.fs.get_file_info(selector))
            except FileNotFoundError:
                return []

        return self.call("list", relative, list_entries)

    def relative_to_root(self, fs_path: str) -> str:
        """The relative path of a filesystem path under the root."""
        root = self.root.rstrip("/")
        if root and not fs_path.startswith(root + "/"):
            raise ValueError(f"{fs_path!r} is not under the storage root {root!r}")
        return fs_path[len(root) + 1 :] if root else fs_path.lstrip("/")
