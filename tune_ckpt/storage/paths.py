"""Relative storage paths: the only kind tune_ckpt persists.

Pure string functions, no I/O. A relative path uses ``/``, is not empty, does not start with
``/`` (or a drive or URI scheme) and has no ``..`` or ``.`` segment, so joining it under a
root can never escape that root.
"""

from __future__ import annotations

import re

from tune_ckpt.errors import UnsafePathError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

CHECKPOINT_PREFIX = "checkpoint_"
_CHECKPOINT_NAME = re.compile(r"^checkpoint_(\d{6,})$")


def check_relative(path: str) -> str:
    """Return ``path`` if it is a safe relative path, else raise UnsafePathError."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"path {path!r} is invalid: a non-empty relative path is needed")
    if path.startswith(("/", "\\")) or _SCHEME.match(path):
        raise UnsafePathError(f"path {path!r} is absolute: only relative paths are stored")
    parts = path.replace("\\", "/").split("/")
    if any(part in ("..", ".") for part in parts):
        raise UnsafePathError(f"path {path!r} contains '..' or '.': it could escape its root")
    if any(part == "" for part in parts):
        raise UnsafePathError(f"path {path!r} has an empty segment")
    return path


def join(*parts: str) -> str:
    """Join relative path segments with ``/``, checking the result."""
    return check_relative("/".join(p.strip("/") for p in parts if p))


def join_under(root: str, relative: str) -> str:
    """An absolute filesystem path for ``relative`` under ``root`` (which may be ``""``)."""
    relative = check_relative(relative)
    root = root.rstrip("/")
    return f"{root}/{relative}" if root else relative


def checkpoint_dirname(iteration: int) -> str:
    """``checkpoint_<iteration:06d>``, the spec's folder name for a checkpoint."""
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ValueError(f"iteration={iteration!r} is invalid: an int >= 0")
    return f"{CHECKPOINT_PREFIX}{iteration:06d}"


def parse_checkpoint_dirname(name: str) -> int | None:
    """The iteration in a ``checkpoint_NNNNNN`` folder name, or None for other names."""
    match = _CHECKPOINT_NAME.match(name)
    return int(match.group(1)) if match else None


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def parent(path: str) -> str:
    head, _, _ = path.rstrip("/").rpartition("/")
    return head
