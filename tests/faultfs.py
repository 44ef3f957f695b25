"""A fault-injecting pyarrow filesystem for tests: a real filesystem that fails on command.

``FaultFS(base_fs, control_path).fs`` is a ``pyarrow.fs.PyFileSystem`` whose handler passes
every call to ``base_fs`` (a LocalFileSystem or an S3FileSystem on moto) unless the control
file says to fail it. The handler pickles (a RunConfig carries it to Ray's workers) and reads
the control file, a small JSON document on local disk, on each call (cached by its inode and
mtime), so the test process switches faults on and off while workers run:

* ``set(fraction=0.1, seed=3, kinds=("slowdown",))``: a seeded fraction of the calls fails;
  whether a call fails depends on the seed, the method, the path and how many times this
  process made that call, so a retry of a failed call gets a fresh draw and a run is
  repeatable whatever the threads' interleaving;
* ``fail(methods=("open_output_stream",), kinds=("enospc",), path_contains="x", skip=2)``:
  the matching calls fail after the first ``skip`` (counted per process), ``times`` of them
  (all when None);
* ``down(seconds)`` / ``up()``: every call fails as against an endpoint that does not answer;
* ``off()``: no faults.

The errors raised are what the real backend raises (pyarrow passes a handler's exception to
the caller unchanged, class and errno included): on S3, OSErrors in pyarrow's message format
(``AWS Error SLOW_DOWN during PutObject operation: ...``); on local disk, OSErrors with the
errno the kernel gives (``ETIMEDOUT``, ``EACCES``, ``ENOSPC``). Each injected fault is
appended as a JSON line to ``<control_path>.faults``; :meth:`FaultFS.injected` reads them
from every process.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

KINDS = ("slowdown", "http503", "http500", "timeout", "reset", "permission", "enospc")
"""What an injected fault looks like: throttling, a 503 or 500 answer, a timeout, a reset
connection (transient); a permission error or no space left (permanent)."""

# The S3 operation pyarrow names in its error for each handler method.
_S3_OPERATIONS = {
    "get_file_info": "HeadObject",
    "get_file_info_selector": "ListObjectsV2",
    "create_dir": "PutObject",
    "delete_dir": "DeleteObjects",
    "delete_dir_contents": "DeleteObjects",
    "delete_root_dir_contents": "DeleteObjects",
    "delete_file": "DeleteObject",
    "move": "CopyObject",
    "copy_file": "CopyObject",
    "open_input_stream": "GetObject",
    "open_input_file": "GetObject",
    "open_output_stream": "CreateMultipartUpload",
    "open_append_stream": "CreateMultipartUpload",
}


def _s3_error(code: str, method: str, path: str, detail: str) -> OSError:
    """An OSError as pyarrow's S3 filesystem raises it for an AWS error ``code``."""
    bucket, _, key = path.partition("/")
    operation = _S3_OPERATIONS.get(method, "HeadObject")
    return OSError(
        f"When accessing key '{key}' in bucket '{bucket}': AWS Error {code} during "
        f"{operation} operation: {detail}"
    )


def make_error(kind: str, method: str, path: str, s3: bool) -> OSError:
    """The exception the real backend (S3 when ``s3``, else a local disk or NFS mount)
    raises for a fault of ``kind``. Throttling and HTTP answers exist only on S3 and take
    its form on either."""
    if kind == "slowdown":
        return _s3_error("SLOW_DOWN", method, path, "Please reduce your request rate.")
    if kind == "http503":
        return _s3_error("UNKNOWN (HTTP status 503)", method, path, "No response body.")
    if kind == "http500":
        return _s3_error("INTERNAL_FAILURE", method, path, "We encountered an internal error.")
    if kind == "timeout":
        if s3:
            detail = "curlCode: 28, Timeout was reached"
            return _s3_error("NETWORK_CONNECTION", method, path, detail)
        return TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT), path)
    if kind == "reset":
        if s3:
            detail = "curlCode: 56, Failure when receiving data from the peer"
            return _s3_error("NETWORK_CONNECTION", method, path, detail)
        return ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET), path)
    if kind == "down":
        if s3:
            detail = "curlCode: 7, Could not connect to server"
            return _s3_error("NETWORK_CONNECTION", method, path, detail)
        return TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT), path)
    if kind == "permission":
        if s3:
            return _s3_error("ACCESS_DENIED", method, path, "Access Denied")
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    if kind == "enospc":
        if s3:  # what S3-compatible stores (MinIO) answer when full
            detail = "Unable to parse ExceptionName: XMinioStorageFull Message: Storage full"
            return _s3_error("UNKNOWN (HTTP status 507)", method, path, detail)
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    raise ValueError(f"kind={kind!r} is invalid: one of {KINDS} or 'down'")


class FaultHandler(pafs.FileSystemHandler):
    """Passes every call to ``base`` unless the control file at ``control_path`` says to
    fail it. Picklable: a copy in another process reads the same control file."""

    def __init__(self, base: pafs.FileSystem, control_path: str) -> None:
        self.base = base
        self.control_path = control_path
        self._s3 = base.type_name == "s3"
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._calls: Counter[tuple[Any, ...]] = Counter()

    def __reduce__(self) -> tuple[type, tuple[pafs.FileSystem, str]]:
        return (type(self), (self.base, self.control_path))

    # -- deciding --------------------------------------------------------------------------

    def _control(self) -> dict[str, Any]:
        try:
            st = os.stat(self.control_path)
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        with open(self.control_path) as f:
            control = json.load(f)
        with self._lock:
            self._cached = (key, control)
        return dict(control)

    def _count(self, *key: Any) -> int:
        with self._lock:
            self._calls[key] += 1
            return self._calls[key]

    def _check(self, method: str, path: str) -> None:
        """Raise the configured fault for this call, if any."""
        control = self._control()
        if not control:
            return
        if control.get("down_until", 0) > time.time():
            self._inject("down", method, path)
        methods = control.get("methods")
        if methods is not None and method not in methods:
            return
        contains = control.get("path_contains")
        if contains is not None and contains not in path:
            return
        kinds = control.get("kinds") or ["slowdown"]
        generation = control.get("generation", 0)
        if control.get("mode") == "fraction":
            n = self._count(generation, method, path)
            draw = hashlib.blake2b(f"{control['seed']}:{method}:{path}:{n}".encode()).digest()
            if int.from_bytes(draw[:8], "big") / 2**64 < control["fraction"]:
                self._inject(kinds[draw[8] % len(kinds)], method, path)
        elif control.get("mode") == "calls":
            n = self._count(generation)
            skip, times = control.get("skip", 0), control.get("times")
            if n > skip and (times is None or n <= skip + times):
                self._inject(kinds[(n - skip - 1) % len(kinds)], method, path)

    def _inject(self, kind: str, method: str, path: str) -> None:
        record = {"pid": os.getpid(), "method": method, "path": path, "kind": kind}
        record["time"] = time.time()
        with open(f"{self.control_path}.faults", "a") as log:
            log.write(json.dumps(record) + "\n")
        raise make_error(kind, method, path, self._s3)

    # -- the FileSystemHandler interface -----------------------------------------------------

    def get_type_name(self) -> str:
        return f"fault+{self.base.type_name}"

    def normalize_path(self, path: str) -> str:
        return str(self.base.normalize_path(path))

    def equals(self, other: Any) -> bool:
        return (
            isinstance(other, FaultHandler)
            and other.control_path == self.control_path
            and other.base.equals(self.base)
        )

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        for path in paths:
            self._check("get_file_info", path)
        return list(self.base.get_file_info(paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        self._check("get_file_info_selector", selector.base_dir)
        return list(self.base.get_file_info(selector))

    def create_dir(self, path: str, recursive: bool) -> None:
        self._check("create_dir", path)
        self.base.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._check("delete_dir", path)
        self.base.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._check("delete_dir_contents", path)
        self.base.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        self._check("delete_root_dir_contents", "")
        self.base.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path: str) -> None:
        self._check("delete_file", path)
        self.base.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._check("move", dest)
        self.base.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self._check("copy_file", dest)
        self.base.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        self._check("open_input_stream", path)
        return self.base.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        self._check("open_input_file", path)
        return self.base.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        self._check("open_output_stream", path)
        return self.base.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        self._check("open_append_stream", path)
        return self.base.open_append_stream(path, metadata=metadata)


class FaultFS:
    """The test's side: the faulty filesystem (``.fs``) and the switches that drive it."""

    def __init__(self, base: pafs.FileSystem, control_path: str | os.PathLike[str]) -> None:
        self.control_path = os.fspath(control_path)
        self.handler = FaultHandler(base, self.control_path)
        self.fs = pafs.PyFileSystem(self.handler)
        self._generation = 0
        self._down_until = 0.0
        self._rule: dict[str, Any] = {}
        self._write()

    def _write(self) -> None:
        self._generation += 1
        control = {**self._rule, "generation": self._generation, "down_until": self._down_until}
        tmp = f"{self.control_path}.tmp"
        Path(tmp).write_text(json.dumps(control))
        os.replace(tmp, self.control_path)  # a new inode: every reader sees the change

    def set(
        self,
        fraction: float,
        seed: int = 0,
        kinds: Iterable[str] = ("slowdown",),
        methods: Iterable[str] | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail a seeded ``fraction`` of the (matching) calls with faults of ``kinds``."""
        self._rule = {
            "mode": "fraction",
            "fraction": fraction,
            "seed": seed,
            "kinds": _kinds(kinds),
            "methods": None if methods is None else list(methods),
            "path_contains": path_contains,
        }
        self._write()

    def fail(
        self,
        methods: Iterable[str] | None = None,
        kinds: Iterable[str] = ("slowdown",),
        path_contains: str | None = None,
        skip: int = 0,
        times: int | None = None,
    ) -> None:
        """Fail the matching calls after the first ``skip`` of them (per process), ``times``
        of them (every one when None), with faults of ``kinds`` in turn."""
        self._rule = {
            "mode": "calls",
            "kinds": _kinds(kinds),
            "methods": None if methods is None else list(methods),
            "path_contains": path_contains,
            "skip": skip,
            "times": times,
        }
        self._write()

    def down(self, seconds: float = 3600.0) -> None:
        """Fail every call for the next ``seconds``, as a backend that does not answer."""
        self._down_until = time.time() + seconds
        self._write()

    def up(self) -> None:
        self._down_until = 0.0
        self._write()

    def off(self) -> None:
        """No faults at all."""
        self._rule = {}
        self._down_until = 0.0
        self._write()

    def injected(self, kind: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Every fault injected so far, in every process (filtered by kind and method)."""
        try:
            lines = Path(f"{self.control_path}.faults").read_text().splitlines()
        except FileNotFoundError:
            return []
        faults = [json.loads(line) for line in lines if line.strip()]
        return [
            f
            for f in faults
            if (kind is None or f["kind"] == kind) and (method is None or f["method"] == method)
        ]


def _kinds(kinds: Iterable[str]) -> list[str]:
    chosen = list(kinds)
    for kind in chosen:
        if kind not in KINDS:
            raise ValueError(f"kinds: {kind!r} is invalid: one of {KINDS}")
    return chosen
