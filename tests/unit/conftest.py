"""Fixtures shared by the unit tests (no Ray, no network)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

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


@pytest.fixture
def sample_files() -> Tree:
    """A small checkpoint: binary, text, an empty file and a nested folder."""
    return {
        "model.bin": bytes(range(256)) * 64 + os.urandom(1000),
        "config.json": b'{"lr": 0.1}',
        "empty.dat": b"",
        "sub/dir/state.pkl": os.urandom(4096),
    }


@pytest.fixture
def make_dir(tmp_path: Path) -> Callable[[str, Tree], Path]:
    """Write a tree of files into a fresh folder under tmp_path."""

    def make(name: str, files: Tree) -> Path:
        return write_tree(tmp_path / name, files)

    return make
