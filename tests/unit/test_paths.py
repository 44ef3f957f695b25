"""Tests for tune_ckpt.storage.paths: relative paths that can never escape their root."""

from __future__ import annotations

from typing import Any

import pytest

from tune_ckpt.errors import UnsafePathError
from tune_ckpt.storage.paths import (
    basename,
    check_relative,
    checkpoint_dirname,
    join,
    join_under,
    parent,
    parse_checkpoint_dirname,
)


@pytest.mark.parametrize(
    "path",
    [
        "a",
        "trial_00000_0_lr=0.01/checkpoint_000010",
        "a/b/c.txt",
        "..hidden",
        "file..name",
        ".metadata.json",
        "trial,lr=1e-3",
    ],
)
def test_check_relative_accepts_safe_paths(path: str) -> None:
    """Plain relative paths (dots inside names included) are returned unchanged."""
    assert check_relative(path) == path


@pytest.mark.parametrize("path", ["/abs", "/", "//server/share", "\\abs", "\\\\server\\share"])
def test_check_relative_rejects_absolute(path: str) -> None:
    """Paths starting with '/' or '\\' are absolute and rejected."""
    with pytest.raises(UnsafePathError, match="absolute"):
        check_relative(path)


@pytest.mark.parametrize("path", ["s3://x", "s3://bucket/key", "file:///tmp/x", "gs://b", "C:\\x"])
def test_check_relative_rejects_uris_and_drives(path: str) -> None:
    """URIs and drive-letter paths are absolute and rejected."""
    with pytest.raises(UnsafePathError, match="absolute"):
        check_relative(path)


@pytest.mark.parametrize("path", ["..", "../x", "a/../b", "a/..", "a/b/../../.."])
def test_check_relative_rejects_parent_segments(path: str) -> None:
    """Any '..' segment is rejected."""
    with pytest.raises(UnsafePathError, match=r"'\.\.'"):
        check_relative(path)


@pytest.mark.parametrize("path", [".", "./a", "a/./b", "a/."])
def test_check_relative_rejects_dot_segments(path: str) -> None:
    """Any '.' segment is rejected."""
    with pytest.raises(UnsafePathError):
        check_relative(path)


@pytest.mark.parametrize("path", ["a\\..\\b", "..\\etc", "a\\..", "a/b\\..\\..\\c", "a\\.\\b"])
def test_check_relative_rejects_backslash_climbs(path: str) -> None:
    """Windows-style '..' and '.' segments separated by backslashes are rejected."""
    with pytest.raises(UnsafePathError):
        check_relative(path)


@pytest.mark.parametrize("path", ["a//b", "a/", "a/b/", "a\\\\b"])
def test_check_relative_rejects_empty_segments(path: str) -> None:
    """Empty segments (double or trailing separators) are rejected."""
    with pytest.raises(UnsafePathError, match="empty segment"):
        check_relative(path)


@pytest.mark.parametrize("path", ["", None, b"a", 3])
def test_check_relative_rejects_empty_and_non_strings(path: Any) -> None:
    """The empty string and non-strings are rejected."""
    with pytest.raises(UnsafePathError, match="non-empty relative path"):
        check_relative(path)


def test_unsafe_path_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch unsafe paths."""
    with pytest.raises(ValueError):
        check_relative("../x")


def test_join_strips_separators_and_checks() -> None:
    """join concatenates with '/', dropping empty parts and stray slashes."""
    assert join("trial", "checkpoint_000001") == "trial/checkpoint_000001"
    assert join("trial/", "/checkpoint_000001", "") == "trial/checkpoint_000001"
    with pytest.raises(UnsafePathError):
        join("trial", "..", "x")


def test_join_under_root() -> None:
    """join_under puts a checked relative path under a root, or returns it for root ''."""
    assert join_under("/data/exp", "t/c") == "/data/exp/t/c"
    assert join_under("/data/exp/", "t") == "/data/exp/t"
    assert join_under("bucket/prefix", "t") == "bucket/prefix/t"
    assert join_under("", "t/c") == "t/c"
    with pytest.raises(UnsafePathError):
        join_under("/data/exp", "../../etc/passwd")
    with pytest.raises(UnsafePathError):
        join_under("/data/exp", "/etc/passwd")


@pytest.mark.parametrize(
    ("iteration", "name"),
    [
        (0, "checkpoint_000000"),
        (10, "checkpoint_000010"),
        (999999, "checkpoint_999999"),
        (1234567, "checkpoint_1234567"),
    ],
)
def test_checkpoint_dirname_and_parse_round_trip(iteration: int, name: str) -> None:
    """checkpoint_dirname pads to six digits and parse_checkpoint_dirname inverts it."""
    assert checkpoint_dirname(iteration) == name
    assert parse_checkpoint_dirname(name) == iteration


@pytest.mark.parametrize("iteration", [-1, True, 1.0, "10", None])
def test_checkpoint_dirname_rejects_bad_iterations(iteration: Any) -> None:
    """Negative, bool, float and non-int iterations are rejected."""
    with pytest.raises(ValueError, match="iteration="):
        checkpoint_dirname(iteration)


@pytest.mark.parametrize(
    "name",
    [
        "checkpoint_10",
        "checkpoint_",
        "checkpoint_000010.tmp",
        ".tmp_checkpoint_000010_ab12cd34",
        ".trash_checkpoint_000010_ab12cd34",
        "checkpoint_00001a",
        "Checkpoint_000010",
        "params.json",
    ],
)
def test_parse_checkpoint_dirname_rejects_other_names(name: str) -> None:
    """Names that are not checkpoint_NNNNNN (six or more digits) parse to None."""
    assert parse_checkpoint_dirname(name) is None


def test_basename_and_parent() -> None:
    """basename and parent split on the last '/'."""
    assert basename("a/b/checkpoint_000001") == "checkpoint_000001"
    assert basename("a/b/") == "b"
    assert basename("top") == "top"
    assert parent("a/b/checkpoint_000001") == "a/b"
    assert parent("top") == ""
    assert parent("/root/x") == "/root"
