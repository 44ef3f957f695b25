"""The hidden folders beside a checkpoint on local storage, and the rename that publishes one.

A checkpoint ``<trial>/checkpoint_NNNNNN`` is written into a temporary sibling
``.tmp_checkpoint_NNNNNN_<id>`` and renamed into place; a checkpoint it replaces is first moved
aside to ``.trash_checkpoint_NNNNNN_<id>``. What an interrupted write leaves of these,
``storage/sweep`` removes or publishes.
"""

from __future__ import annotations

import uuid

from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation

TMP_PREFIX = ".tmp_checkpoint_"
TRASH_PREFIX = ".trash_checkpoint_"


def sibling(relative: str, prefix: str) -> str:
    """A uniquely named hidden sibling of ``relative`` (``<prefix>NNNNNN_<id>``)."""
    parent, name = paths.parent(relative), paths.basename(relative)
    unique = f"{prefix}{name.removeprefix(paths.CHECKPOINT_PREFIX)}_{uuid.uuid4().hex[:8]}"
    return paths.join(parent, unique) if parent else unique


def published_name(tmp_name: str) -> str | None:
    """``checkpoint_NNNNNN`` for a temporary folder name ``.tmp_checkpoint_NNNNNN_<id>``."""
    if not tmp_name.startswith(TMP_PREFIX):
        return None
    number = tmp_name[len(TMP_PREFIX) :].split("_", 1)[0]
    return f"{paths.CHECKPOINT_PREFIX}{number}" if number.isdigit() else None


def publish_local(location: StorageLocation, tmp_relative: str, relative: str) -> None:
    """Rename a complete temporary folder into place (atomic on POSIX and NFS)."""
    parent = paths.parent(relative)
    if parent:
        location.makedirs(parent)
    if location.exists(relative):
        # Replacing (only ever a checkpoint that failed verification): move the old one
        # aside first; a rename onto a non-empty folder fails on POSIX.
        trash = sibling(relative, TRASH_PREFIX)
        location.move(relative, trash)
        location.move(tmp_relative, relative)
        location.delete_dir(trash)
    else:
        location.move(tmp_relative, relative)
