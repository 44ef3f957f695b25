"""Fixtures shared by the unit tests (no Ray, no network)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from trees import Tree, read_tree, write_tree  # noqa: F401 - re-exported to the tests


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
