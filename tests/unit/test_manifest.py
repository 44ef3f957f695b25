"""Tests for tune_ckpt.storage.manifest: the commit marker's format and digest."""

from __future__ import annotations

import json

import blake3
import pytest

from tune_ckpt.errors import CheckpointError, CorruptCheckpointError, UnsafePathError
from tune_ckpt.storage.manifest import (
    FORMAT_VERSION,
    HASH_ALGORITHM,
    MANIFEST_NAME,
    METADATA_NAME,
    UNLISTED,
    Manifest,
    ManifestEntry,
    digest,
)


def make_manifest() -> Manifest:
    return Manifest(
        files=(
            ManifestEntry("model/weights.bin", 1024, "a" * 64),
            ManifestEntry("config.json", 10, "b" * 64),
            ManifestEntry("empty", 0, blake3.blake3(b"").hexdigest()),
        ),
        iteration=7,
        created=1700000000.25,
    )


def test_round_trip() -> None:
    """from_bytes(to_bytes()) gives back the same entries, iteration and time."""
    manifest = make_manifest()
    back = Manifest.from_bytes(manifest.to_bytes())
    assert set(back.files) == set(manifest.files)
    assert back.iteration == 7
    assert back.created == 1700000000.25


def test_round_trip_without_iteration() -> None:
    """A manifest without an iteration round-trips as None."""
    manifest = Manifest((ManifestEntry("a", 1, "c" * 64),), iteration=None, created=1.0)
    assert Manifest.from_bytes(manifest.to_bytes()).iteration is None


def test_to_bytes_is_sorted_json_with_format_and_algorithm() -> None:
    """The manifest is JSON naming its format and hash algorithm, files sorted by path."""
    body = json.loads(make_manifest().to_bytes())
    assert body["format"] == FORMAT_VERSION
    assert body["algorithm"] == HASH_ALGORITHM == "blake3"
    assert [f["path"] for f in body["files"]] == ["config.json", "empty", "model/weights.bin"]


def test_total_size_and_entry_lookup() -> None:
    """total_size sums the file sizes; entry() finds a file or returns None."""
    manifest = make_manifest()
    assert manifest.total_size == 1034
    assert manifest.entry("config.json") == ManifestEntry("config.json", 10, "b" * 64)
    assert manifest.entry("missing") is None


def test_digest_is_stable_and_order_independent() -> None:
    """The digest is the BLAKE3 hash of the bytes and does not depend on entry order."""
    manifest = make_manifest()
    data = manifest.to_bytes()
    assert digest(data) == blake3.blake3(data).hexdigest()
    assert digest(manifest.to_bytes()) == digest(data)
    shuffled = Manifest(tuple(reversed(manifest.files)), manifest.iteration, manifest.created)
    assert shuffled.to_bytes() == data
    assert digest(shuffled.to_bytes()) == digest(data)


def test_digest_changes_with_content() -> None:
    """A manifest describing different content has a different digest."""
    manifest = make_manifest()
    changed = Manifest(
        (ManifestEntry("config.json", 11, "b" * 64), *manifest.files[::2]),
        manifest.iteration,
        manifest.created,
    )
    assert digest(changed.to_bytes()) != digest(manifest.to_bytes())


def good_body() -> dict:
    return json.loads(make_manifest().to_bytes())


def mutate(**changes: object) -> bytes:
    body = good_body()
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b"null",
        b'"a string"',
        b"42",
        mutate(format=99),
        mutate(algorithm="md5"),
        mutate(files=None),
        mutate(files={"a": 1}),
        mutate(files=[{"path": "a", "size": 1}]),
        mutate(files=[{"path": "a", "size": "big", "hash": "x"}]),
        mutate(files=[["a", 1, "x"]]),
        mutate(files=[{"path": "../escape", "size": 1, "hash": "x"}]),
        mutate(files=[{"path": "/abs", "size": 1, "hash": "x"}]),
        mutate(iteration="ten"),
    ],
)
def test_malformed_manifest_raises_checkpoint_error(data: bytes) -> None:
    """Anything but a well-formed manifest makes its checkpoint bad: CorruptCheckpointError
    naming the checkpoint, with the reason as its problem."""
    with pytest.raises(CorruptCheckpointError) as info:
        Manifest.from_bytes(data, "s3://b/t/c")
    assert info.value.path == "s3://b/t/c"
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{MANIFEST_NAME} does not parse: ")


def test_missing_format_field_is_rejected() -> None:
    """A manifest without its format version is not trusted."""
    body = good_body()
    del body["format"]
    with pytest.raises(CheckpointError, match="unsupported format"):
        Manifest.from_bytes(json.dumps(body).encode())


def test_entry_paths_must_be_relative() -> None:
    """ManifestEntry rejects paths that could escape the checkpoint folder."""
    with pytest.raises(UnsafePathError):
        ManifestEntry("../x", 1, "a")


def test_unlisted_names() -> None:
    """The manifest and metadata files are the ones manifests do not list."""
    assert frozenset({MANIFEST_NAME, METADATA_NAME}) == UNLISTED
    assert MANIFEST_NAME.startswith(".") and METADATA_NAME.startswith(".")


def test_results_round_trip_and_non_json_values_become_strings() -> None:
    """The results since the previous checkpoint survive serialisation; NaN becomes text."""
    results = (
        {"training_iteration": 3, "loss": 0.5},
        {"training_iteration": 4, "loss": float("nan")},
    )
    parsed = Manifest.from_bytes(Manifest((), 4, 0.0, results).to_bytes())
    assert parsed.results == (
        {"training_iteration": 3, "loss": 0.5},
        {"training_iteration": 4, "loss": "nan"},
    )


def test_results_that_are_not_objects_are_rejected() -> None:
    """A manifest whose results are not a list of objects is unreadable, not half-trusted."""
    body = json.loads(Manifest((), 1, 0.0).to_bytes())
    body["results"] = [1, 2]
    with pytest.raises(CheckpointError, match="results"):
        Manifest.from_bytes(json.dumps(body).encode())
