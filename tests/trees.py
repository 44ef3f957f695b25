"""Folders as ``{relative path: bytes}``: writing and reading test file trees."""

from __future__ import annotations

import os
from pathlib import Path

Tree = dict[str, bytes]


def write_tree(root: Path | str, files: Tree) -> Path:
    """Write ``{relative path: bytes}`` under ``root`` and return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def read_tree(root: Path | str) -> Tree:
    """Every regular file under ``root`` as ``{relative path: bytes}``."""
    found: Tree = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            found[full.relative_to(root).as_posix()] = full.read_bytes()
    return found
