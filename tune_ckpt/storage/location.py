"""StorageLocation: a pyarrow filesystem plus a root, resolved once from what the user gave.

Everything below the root is addressed by relative paths (see ``paths``). Backend errors are
translated here, at the boundary, into ``tune_ckpt.errors.STORAGE_ERRORS``.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from tune_ckpt.errors import (
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
)
from tune_ckpt.storage import paths

DEFAULT_STORAGE_PATH = "~/tune_ckpt_results"

_NOT_FOUND = re.compile(
    r"NO_SUCH_BUCKET|NoSuchBucket|NoSuchKey|NOT_FOUND|does not exist|Bucket '[^']*' not found",
    re.I,
)
# \b403\b: a bare "403" also matches port numbers such as 127.0.0.1:40351.
_DENIED = re.compile(r"ACCESS_DENIED|AccessDenied|Forbidden|Permission denied|\b403\b", re.I)
_UNREACHABLE = re.compile(
    r"curlCode|Couldn't connect|Connection refused|connect to server|NETWORK_CONNECTION|"
    r"timed out|Timeout|resolve host|Connection reset|Unable to connect",
    re.I,
)


def translate_error(exc: BaseException, path: str) -> StorageError:
    """Map a backend exception to the matching StorageError subclass naming ``path``."""
    if isinstance(exc, StorageError):
        return exc
    message = str(exc).strip() or type(exc).__name__
    # Unreachable first: a network failure's message names hosts and ports, whose digits or
    # words must not pass for a missing bucket or a refusal.
    if isinstance(exc, ConnectionError | TimeoutError) or _UNREACHABLE.search(message):
        return StorageUnavailableError(path, message)
    if isinstance(exc, FileNotFoundError) or _NOT_FOUND.search(message):
        return StorageNotFoundError(path, message)
    if isinstance(exc, PermissionError) or _DENIED.search(message):
        return StoragePermissionError(path, message)
    return StorageError(path, message)


@contextlib.contextmanager
def backend_errors(path: str) -> Iterator[None]:
    """Re-raise OS/pyarrow errors inside the block as StorageErrors naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:  # pyarrow raises OSError subclasses for every backend failure
        raise translate_error(exc, path) from exc


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
    """

    fs: Any
    root: str
    display_root: str

    @classmethod
    def resolve(
        cls,
        storage_path: str | os.PathLike[str] | None = None,
        storage_filesystem: pafs.FileSystem | None = None,
    ) -> StorageLocation:
        """Resolve a local path, ``file://`` or ``scheme://`` URI, or a path inside a given
        filesystem. The default is ``~/tune_ckpt_results`` on local disk."""
        if storage_filesystem is not None:
            root = os.fspath(storage_path) if storage_path is not None else ""
            root = root.rstrip("/")
            return cls(storage_filesystem, root, f"{storage_filesystem.type_name}:{root or '/'}")
        raw = os.fspath(storage_path) if storage_path is not None else DEFAULT_STORAGE_PATH
        if "://" not in raw:
            local = os.path.abspath(os.path.expanduser(raw))
            return cls(pafs.LocalFileSystem(), local.rstrip("/") or "/", local)
        scheme = raw.split("://", 1)[0].lower()
        with backend_errors(raw):
            if scheme == "s3":
                fs, root = _s3_from_uri(raw)
            else:
                fs, root = pafs.FileSystem.from_uri(raw)
        return cls(fs, root.rstrip("/"), _display(raw))

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
        return StorageLocation(self.fs, self.path(relative), self.uri(relative))

    # -- small wrappers that translate backend errors -------------------------------------

    def exists(self, relative: str) -> bool:
        with backend_errors(self.uri(relative)):
            info = self.fs.get_file_info(self.path(relative))
        return bool(info.type != pafs.FileType.NotFound)

    def is_file(self, relative: str) -> bool:
        with backend_errors(self.uri(relative)):
            info = self.fs.get_file_info(self.path(relative))
        return bool(info.type == pafs.FileType.File)

    def makedirs(self, relative: str = "") -> None:
        with backend_errors(self.uri(relative)):
            self.fs.create_dir(self.path(relative), recursive=True)

    def read_bytes(self, relative: str) -> bytes:
        with (
            backend_errors(self.uri(relative)),
            self.fs.open_input_stream(self.path(relative)) as stream,
        ):
            return bytes(stream.readall())

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write a whole file. On local disk via a temporary sibling renamed into place, so a
        reader never sees half a file; object stores publish an object whole anyway."""
        target = self.path(relative)
        with backend_errors(self.uri(relative)):
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
        (object stores have no append)."""
        if self.is_local:
            target = self.path(relative)
            with backend_errors(self.uri(relative)):
                parent = paths.parent(target)
                if parent:
                    self.fs.create_dir(parent, recursive=True)
                with self.fs.open_append_stream(target) as out:
                    out.write(data)
            return
        old = self.read_bytes(relative) if self.exists(relative) else b""
        self.write_bytes(relative, old + data)

    def filler(self, relative: str) -> Callable[[memoryview], None]:
        """A function that fills a memoryview with the file's bytes; the view's length must
        be the file's size (a shorter file raises StorageError)."""

        def fill(view: memoryview) -> None:
            with (
                backend_errors(self.uri(relative)),
                self.fs.open_input_stream(self.path(relative)) as src,
            ):
                got = 0
                while got < len(view):
                    n = src.readinto(view[got:])
                    if not n:
                        raise StorageError(self.uri(relative), f"file ended after {got} bytes")
                    got += n

        return fill

    def delete_file(self, relative: str, missing_ok: bool = True) -> None:
        with backend_errors(self.uri(relative)):
            try:
                self.fs.delete_file(self.path(relative))
            except FileNotFoundError:
                if not missing_ok:
                    raise

    def delete_dir(self, relative: str, missing_ok: bool = True) -> None:
        with backend_errors(self.uri(relative)):
            try:
                self.fs.delete_dir(self.path(relative))
            except FileNotFoundError:
                if not missing_ok:
                    raise

    def list_dir(self, relative: str = "", recursive: bool = False) -> list[pafs.FileInfo]:
        """Entries under ``relative`` (empty when it does not exist). A missing bucket, or a
        path under a regular file, raises a StorageError instead of listing as empty."""
        # Not allow_not_found=True: pyarrow's S3 then also lists a missing bucket as empty.
        selector = pafs.FileSelector(self.path(relative), recursive=recursive)
        with backend_errors(self.uri(relative)):
            try:
                return list(self.fs.get_file_info(selector))
            except FileNotFoundError:
                return []

    def relative_to_root(self, fs_path: str) -> str:
        """The relative path of a filesystem path under the root."""
        root = self.root.rstrip("/")
        if root and not fs_path.startswith(root + "/"):
            raise ValueError(f"{fs_path!r} is not under the storage root {root!r}")
        return fs_path[len(root) + 1 :] if root else fs_path.lstrip("/")
