"""Checkpoint handles on S3 (moto): downloads for as_directory/to_directory, metadata, packing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tune_ckpt.checkpoint import FILES_KEY, Checkpoint
from tune_ckpt.storage.manifest import MANIFEST_NAME, METADATA_NAME

from .conftest import Backend, MakeDir, MotoServer, Tree, read_tree

CKPT = "trial_0/checkpoint_000001"


def without_commit_files(files: Tree) -> Tree:
    return {rel: data for rel, data in files.items() if rel not in (MANIFEST_NAME, METADATA_NAME)}


@pytest.fixture
def s3_checkpoint(s3: Backend, make_dir: MakeDir, sample_files: Tree) -> Checkpoint:
    """A checkpoint committed to S3, opened by its s3:// URI (with endpoint options)."""
    s3.store.commit_local_dir(CKPT, str(make_dir(sample_files)), 1)
    base, query = s3.uri.split("?", 1)
    return Checkpoint.from_directory(f"{base}/{CKPT}?{query}")


def test_from_s3_uri_points_into_the_bucket(s3: Backend, s3_checkpoint: Checkpoint) -> None:
    """from_directory(s3://...) keeps the bucket path and the S3 filesystem; no download yet."""
    assert s3_checkpoint.path == s3.location.path(CKPT)
    assert s3_checkpoint.filesystem is not None
    assert s3_checkpoint.filesystem.type_name == "s3"
    assert not s3_checkpoint.is_dict


def test_as_directory_downloads_to_temp_and_cleans_up(
    s3_checkpoint: Checkpoint, sample_files: Tree
) -> None:
    """as_directory on S3 yields a local temporary copy that is removed after the block."""
    with s3_checkpoint.as_directory() as local:
        assert os.path.isdir(local)
        assert without_commit_files(read_tree(local)) == sample_files
    assert not os.path.exists(local)


def test_as_directory_cleans_up_after_an_exception(s3_checkpoint: Checkpoint) -> None:
    """The temporary copy is removed even when the block raises."""
    with pytest.raises(RuntimeError, match="boom"), s3_checkpoint.as_directory() as local:
        assert os.path.isdir(local)
        raise RuntimeError("boom")
    assert not os.path.exists(local)


def test_to_directory_from_s3(
    s3_checkpoint: Checkpoint, sample_files: Tree, tmp_path: Path
) -> None:
    """to_directory copies the S3 checkpoint's files to a local folder byte for byte."""
    out = s3_checkpoint.to_directory(tmp_path / "restored")
    assert out == str(tmp_path / "restored")
    assert without_commit_files(read_tree(out)) == sample_files


def test_to_dict_and_pack_from_s3(s3_checkpoint: Checkpoint, sample_files: Tree) -> None:
    """An S3 checkpoint reads as a files dict and packs its files (not the manifest)."""
    assert s3_checkpoint.to_dict() == {FILES_KEY: sample_files}
    packed = s3_checkpoint.pack()
    assert sorted(packed.paths) == sorted(sample_files)
    assert {rel: bytes(packed.file(rel)) for rel in packed.paths} == sample_files


def test_metadata_on_s3(s3: Backend, s3_checkpoint: Checkpoint, tmp_path: Path) -> None:
    """Metadata set on an S3 checkpoint is stored beside it, keeps it valid and travels along."""
    assert s3_checkpoint.get_metadata() == {}
    s3_checkpoint.set_metadata({"epoch": 9})
    s3_checkpoint.update_metadata({"acc": 0.5})
    reopened = Checkpoint.from_directory(s3.location.path(CKPT), filesystem=s3.location.fs)
    assert reopened.get_metadata() == {"epoch": 9, "acc": 0.5}
    s3.store.verify(CKPT)
    assert s3_checkpoint.pack().metadata == {"epoch": 9, "acc": 0.5}
    out = reopened.to_directory(tmp_path / "out")
    assert Checkpoint.from_directory(out).get_metadata() == {"epoch": 9, "acc": 0.5}


def test_dict_checkpoint_through_s3(s3: Backend, tmp_path: Path) -> None:
    """A dict checkpoint written to a folder, committed to S3 and read back is the same dict."""
    local = Checkpoint.from_dict({"step": 4, "w": [1.5, 2.5]}).to_directory(tmp_path / "d")
    s3.store.commit_local_dir(CKPT, local, 4)
    remote = Checkpoint.from_directory(s3.location.path(CKPT), filesystem=s3.location.fs)
    assert remote.is_dict
    assert remote.to_dict() == {"step": 4, "w": [1.5, 2.5]}


def test_missing_s3_directory_reads_as_error(moto_server: MotoServer) -> None:
    """A checkpoint URI in a bucket that does not exist fails with a storage error."""
    from tune_ckpt.errors import STORAGE_ERRORS

    checkpoint = Checkpoint.from_directory(moto_server.uri("no-such-bucket", "t/checkpoint_000001"))
    with pytest.raises(STORAGE_ERRORS, match="no-such-bucket"):
        checkpoint.to_dict()
