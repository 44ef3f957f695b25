"""Tests for tune_ckpt.checkpoint on local disk: every form becomes every other one."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tune_ckpt.checkpoint import DICT_FILE, FILES_KEY, Checkpoint
from tune_ckpt.errors import UnsafePathError
from tune_ckpt.storage.manifest import MANIFEST_NAME, METADATA_NAME
from tune_ckpt.storage.packing import PackedCheckpoint

from .conftest import Tree, read_tree

MakeDir = Callable[[str, Tree], Path]


# -- dict checkpoints ------------------------------------------------------------------------


def test_from_dict_to_dict() -> None:
    """A dict checkpoint gives back an equal dict (a copy, not the same object)."""
    data = {"step": 3, "weights": [1.0, 2.0], "blob": b"\x00\x01"}
    checkpoint = Checkpoint.from_dict(data)
    out = checkpoint.to_dict()
    assert out == data
    out["step"] = 99
    assert checkpoint.to_dict()["step"] == 3
    assert checkpoint.is_dict
    assert checkpoint.path is None and checkpoint.filesystem is None


def test_from_dict_copies_input() -> None:
    """Changing the source dict afterwards does not change the checkpoint."""
    data: dict[str, Any] = {"a": 1}
    checkpoint = Checkpoint.from_dict(data)
    data["a"] = 2
    assert checkpoint.to_dict() == {"a": 1}


@pytest.mark.parametrize("bad", [[1, 2], "state", None, 5])
def test_from_dict_rejects_non_mappings(bad: Any) -> None:
    """from_dict needs a mapping and says so."""
    with pytest.raises(TypeError, match="a dict is needed"):
        Checkpoint.from_dict(bad)


def test_dict_to_directory_and_back(tmp_path: Path) -> None:
    """to_directory of a dict checkpoint, read back with from_directory, gives the dict."""
    data = {"epoch": 5, "state": {"w": [0.5] * 10}, "raw": os.urandom(100)}
    target = Checkpoint.from_dict(data).to_directory(tmp_path / "out")
    assert target == str(tmp_path / "out")
    assert os.listdir(target) == [DICT_FILE]
    restored = Checkpoint.from_directory(target)
    assert restored.is_dict
    assert restored.to_dict() == data


def test_to_directory_without_path_makes_temp_dir() -> None:
    """to_directory() with no path writes into a new temporary folder."""
    target = Checkpoint.from_dict({"a": 1}).to_directory()
    try:
        assert os.path.isdir(target)
        assert Checkpoint.from_directory(target).to_dict() == {"a": 1}
    finally:
        import shutil

        shutil.rmtree(target)


# -- directory checkpoints -------------------------------------------------------------------


def test_directory_to_dict_lists_files(make_dir: MakeDir, sample_files: Tree) -> None:
    """A plain directory read as a dict is {FILES_KEY: {relative path: bytes}}."""
    src = make_dir("src", sample_files)
    data = Checkpoint.from_directory(src).to_dict()
    assert set(data) == {FILES_KEY}
    assert data[FILES_KEY] == sample_files
    assert not Checkpoint.from_directory(src).is_dict


def test_directory_dict_directory_is_byte_identical(
    make_dir: MakeDir, sample_files: Tree, tmp_path: Path
) -> None:
    """directory -> to_dict -> from_dict -> to_directory reproduces the files byte for byte."""
    src = make_dir("src", sample_files)
    as_dict = Checkpoint.from_directory(src).to_dict()
    out = Checkpoint.from_dict(as_dict).to_directory(tmp_path / "out")
    assert read_tree(out) == sample_files


def test_directory_dict_pack_directory_is_byte_identical(
    make_dir: MakeDir, sample_files: Tree, tmp_path: Path
) -> None:
    """A directory read as a dict and sent packed (object store) still becomes its files."""
    src = make_dir("src", sample_files)
    as_dict = Checkpoint.from_directory(src).to_dict()
    packed = pickle.loads(pickle.dumps(Checkpoint.from_dict(as_dict).pack(), protocol=5))
    out = Checkpoint.from_packed(packed).to_directory(tmp_path / "out")
    assert read_tree(out) == sample_files
    assert Checkpoint.from_packed(packed).to_dict() == as_dict


def test_as_directory_on_local_dir_is_in_place(make_dir: MakeDir, sample_files: Tree) -> None:
    """as_directory on a local directory yields that directory and leaves it in place."""
    src = make_dir("src", sample_files)
    checkpoint = Checkpoint.from_directory(src)
    with checkpoint.as_directory() as path:
        assert path == str(src)
        assert read_tree(path) == sample_files
    assert read_tree(src) == sample_files
    assert checkpoint.path == str(src)


def test_from_directory_resolves_relative_paths(
    make_dir: MakeDir, sample_files: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative directory path is resolved to an absolute one at construction."""
    src = make_dir("src", sample_files)
    monkeypatch.chdir(src.parent)
    checkpoint = Checkpoint.from_directory("src")
    assert checkpoint.path == str(src)
    monkeypatch.chdir("/")
    assert checkpoint.to_dict()[FILES_KEY] == sample_files


def test_as_directory_on_dict_is_temporary() -> None:
    """as_directory on a dict checkpoint yields a temporary folder removed after the block."""
    checkpoint = Checkpoint.from_dict({"x": 1})
    with checkpoint.as_directory() as path:
        assert os.path.isfile(os.path.join(path, DICT_FILE))
        assert Checkpoint.from_directory(path).to_dict() == {"x": 1}
    assert not os.path.exists(path)


def test_to_directory_copies_without_commit_files(
    make_dir: MakeDir, sample_files: Tree, tmp_path: Path
) -> None:
    """Copying a directory checkpoint leaves out a manifest that the source carries."""
    src = make_dir("src", {**sample_files, MANIFEST_NAME: b"{}"})
    out = Checkpoint.from_directory(src).to_directory(tmp_path / "out")
    assert read_tree(out) == sample_files


def test_to_directory_onto_itself_keeps_files(make_dir: MakeDir, sample_files: Tree) -> None:
    """to_directory with the checkpoint's own path is a no-op, not a self-copy."""
    src = make_dir("src", sample_files)
    assert Checkpoint.from_directory(src).to_directory(src) == str(src)
    assert read_tree(src) == sample_files


# -- metadata --------------------------------------------------------------------------------


def test_metadata_get_set_update_on_dict() -> None:
    """Metadata starts empty, set replaces it, update merges into it."""
    checkpoint = Checkpoint.from_dict({"a": 1})
    assert checkpoint.get_metadata() == {}
    checkpoint.set_metadata({"epoch": 1, "tags": ["x"]})
    assert checkpoint.get_metadata() == {"epoch": 1, "tags": ["x"]}
    checkpoint.update_metadata({"epoch": 2, "best": True})
    assert checkpoint.get_metadata() == {"epoch": 2, "tags": ["x"], "best": True}
    checkpoint.set_metadata({"only": None})
    assert checkpoint.get_metadata() == {"only": None}


def test_get_metadata_returns_a_copy() -> None:
    """Mutating the returned metadata does not change the checkpoint's."""
    checkpoint = Checkpoint.from_dict({})
    checkpoint.set_metadata({"a": 1})
    checkpoint.get_metadata()["a"] = 2
    assert checkpoint.get_metadata() == {"a": 1}


def test_metadata_on_directory_is_persisted(make_dir: MakeDir, sample_files: Tree) -> None:
    """Metadata set on a directory checkpoint is written next to its files."""
    src = make_dir("src", sample_files)
    Checkpoint.from_directory(src).set_metadata({"score": 0.5})
    assert (src / METADATA_NAME).is_file()
    fresh = Checkpoint.from_directory(src)
    assert fresh.get_metadata() == {"score": 0.5}
    fresh.update_metadata({"note": "hi"})
    assert Checkpoint.from_directory(src).get_metadata() == {"score": 0.5, "note": "hi"}
    # The metadata file is not one of the checkpoint's files.
    assert METADATA_NAME not in Checkpoint.from_directory(src).to_dict()[FILES_KEY]


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [({"tags": {"a", "b"}}, "set"), ({"obj": object()}, "object"), ({"raw": b"x"}, "bytes")],
)
def test_non_json_metadata_raises_type_error(bad: dict[str, Any], type_name: str) -> None:
    """Metadata holding a set, an object or bytes raises TypeError naming the type."""
    checkpoint = Checkpoint.from_dict({})
    with pytest.raises(TypeError) as info:
        checkpoint.set_metadata(bad)
    message = str(info.value)
    assert "metadata" in message and type_name in message and "JSON" in message
    with pytest.raises(TypeError, match=type_name):
        checkpoint.update_metadata(bad)
    assert checkpoint.get_metadata() == {}


@pytest.mark.parametrize("bad", [["a"], "text", 3])
def test_non_mapping_metadata_raises_type_error(bad: Any) -> None:
    """Metadata must be a dict."""
    with pytest.raises(TypeError, match="metadata="):
        Checkpoint.from_dict({}).set_metadata(bad)


def test_metadata_survives_to_directory_from_dict(tmp_path: Path) -> None:
    """Metadata of a dict checkpoint is written by to_directory and read back."""
    checkpoint = Checkpoint.from_dict({"a": 1})
    checkpoint.set_metadata({"epoch": 7})
    out = checkpoint.to_directory(tmp_path / "out")
    restored = Checkpoint.from_directory(out)
    assert restored.get_metadata() == {"epoch": 7}
    assert restored.to_dict() == {"a": 1}


def test_metadata_survives_directory_copy(
    make_dir: MakeDir, sample_files: Tree, tmp_path: Path
) -> None:
    """Metadata of a directory checkpoint follows it into to_directory's copy."""
    src = make_dir("src", sample_files)
    Checkpoint.from_directory(src).set_metadata({"k": [1, 2]})
    out = Checkpoint.from_directory(src).to_directory(tmp_path / "out")
    assert Checkpoint.from_directory(out).get_metadata() == {"k": [1, 2]}
    files = read_tree(out)
    files.pop(METADATA_NAME)
    assert files == sample_files


# -- packing ---------------------------------------------------------------------------------


def test_pack_from_packed_round_trip(make_dir: MakeDir, sample_files: Tree, tmp_path: Path) -> None:
    """A directory packed and unpacked becomes the same files with the same metadata."""
    src = make_dir("src", sample_files)
    Checkpoint.from_directory(src).set_metadata({"m": 1})
    packed = Checkpoint.from_directory(src).pack()
    assert sorted(packed.paths) == sorted(sample_files)
    assert packed.nbytes == sum(len(d) for d in sample_files.values())
    assert packed.metadata == {"m": 1}
    restored = Checkpoint.from_packed(packed)
    assert restored.pack() is packed
    assert restored.get_metadata() == {"m": 1}
    assert not restored.is_dict
    out = restored.to_directory(tmp_path / "out")
    files = read_tree(out)
    assert files.pop(METADATA_NAME) == b'{"m": 1}'
    assert files == sample_files


def test_pack_of_dict_round_trip() -> None:
    """A dict checkpoint packs into one pickle file and unpacks to the same dict."""
    checkpoint = Checkpoint.from_dict({"w": list(range(100))})
    checkpoint.set_metadata({"it": 3})
    packed = checkpoint.pack()
    assert packed.paths == [DICT_FILE]
    restored = Checkpoint.from_packed(pickle.loads(pickle.dumps(packed)))
    assert restored.is_dict
    assert restored.to_dict() == {"w": list(range(100))}
    assert restored.get_metadata() == {"it": 3}


def test_packed_file_views(make_dir: MakeDir, sample_files: Tree) -> None:
    """PackedCheckpoint.file gives each file's bytes; unknown names raise KeyError."""
    packed = PackedCheckpoint.from_local_dir(str(make_dir("src", sample_files)))
    for rel, data in sample_files.items():
        assert bytes(packed.file(rel)) == data
    with pytest.raises(KeyError):
        packed.file("nope")


def test_packed_rejects_unsafe_entries() -> None:
    """A PackedCheckpoint cannot name a file outside its folder."""
    with pytest.raises(UnsafePathError):
        PackedCheckpoint((("../evil", 0, 1),), b"x")


@pytest.mark.parametrize("bad", ["../escaped", "a/../../escaped", "/abs", "a//b"])
def test_to_directory_rejects_unsafe_files_as_pack_does(tmp_path: Path, bad: str) -> None:
    """A directory-as-dict naming a file outside its folder is refused by to_directory, as
    by pack(), before any file is written."""
    checkpoint = Checkpoint.from_dict({FILES_KEY: {"kept": b"1", bad: b"2"}})
    target = tmp_path / "inner" / "target"
    with pytest.raises(UnsafePathError, match="path"):
        checkpoint.to_directory(target)
    with pytest.raises(UnsafePathError):
        checkpoint.pack()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_from_local_dir_skips_commit_files(make_dir: MakeDir, sample_files: Tree) -> None:
    """Manifest and metadata files are not packed as checkpoint files."""
    src = make_dir("src", {**sample_files, MANIFEST_NAME: b"{}", METADATA_NAME: b"{}"})
    assert sorted(PackedCheckpoint.from_local_dir(str(src)).paths) == sorted(sample_files)


def test_pickle_protocol_5_keeps_buffer_out_of_band(make_dir: MakeDir, tmp_path: Path) -> None:
    """With protocol 5 and a buffer_callback the file bytes travel out of band."""
    payload = os.urandom(3 * 1024 * 1024 + 17)
    src = make_dir("src", {"big.bin": payload, "small.txt": b"hi"})
    packed = PackedCheckpoint.from_local_dir(str(src), {"meta": True})
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(packed, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert buffers[0].raw().nbytes == len(payload) + 2
    assert len(data) < 4096
    back = pickle.loads(data, buffers=buffers)
    assert bytes(back.file("big.bin")) == payload
    assert bytes(back.file("small.txt")) == b"hi"
    assert back.metadata == {"meta": True}
    back.write_to_local_dir(str(tmp_path / "out"))
    assert read_tree(tmp_path / "out") == {"big.bin": payload, "small.txt": b"hi"}


def test_pickle_protocol_5_without_callback_is_in_band(make_dir: MakeDir) -> None:
    """Protocol 5 without a buffer_callback embeds the bytes and still round-trips."""
    payload = os.urandom(100_000)
    packed = PackedCheckpoint.from_local_dir(str(make_dir("src", {"f": payload})))
    data = pickle.dumps(packed, protocol=5)
    assert len(data) > len(payload)
    assert bytes(pickle.loads(data).file("f")) == payload


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_pickle_older_protocols_round_trip(make_dir: MakeDir, protocol: int) -> None:
    """Protocols before 5 carry the buffer in band and round-trip."""
    files = {"a.bin": os.urandom(50_000), "b/c.txt": b"text"}
    packed = PackedCheckpoint.from_local_dir(str(make_dir("src", files)), {"x": 1})
    back = pickle.loads(pickle.dumps(packed, protocol=protocol))
    assert {rel: bytes(back.file(rel)) for rel in back.paths} == files
    assert back.metadata == {"x": 1}


def test_repickle_after_out_of_band_load(make_dir: MakeDir) -> None:
    """A PackedCheckpoint received out of band can be pickled again with any protocol."""
    files = {"a.bin": os.urandom(10_000)}
    packed = PackedCheckpoint.from_local_dir(str(make_dir("src", files)))
    buffers: list[pickle.PickleBuffer] = []
    back = pickle.loads(
        pickle.dumps(packed, protocol=5, buffer_callback=buffers.append), buffers=buffers
    )
    for protocol in (4, 5):
        again = pickle.loads(pickle.dumps(back, protocol=protocol))
        assert bytes(again.file("a.bin")) == files["a.bin"]


def test_checkpoint_pickles_with_packed_out_of_band(make_dir: MakeDir) -> None:
    """A Checkpoint over a packed buffer pickles with the buffer out of band."""
    payload = os.urandom(200_000)
    checkpoint = Checkpoint.from_packed(
        PackedCheckpoint.from_local_dir(str(make_dir("src", {"f": payload})))
    )
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(checkpoint, protocol=5, buffer_callback=buffers.append)
    assert [b.raw().nbytes for b in buffers] == [len(payload)]
    back = pickle.loads(data, buffers=buffers)
    assert back.to_dict() == {FILES_KEY: {"f": payload}}


def test_directory_checkpoint_pickles(make_dir: MakeDir, sample_files: Tree) -> None:
    """A directory checkpoint pickles (path and filesystem) and still reads its files."""
    src = make_dir("src", sample_files)
    back = pickle.loads(pickle.dumps(Checkpoint.from_directory(src)))
    assert back.path == str(src)
    assert back.to_dict()[FILES_KEY] == sample_files


def test_repr_names_the_form(make_dir: MakeDir) -> None:
    """repr says which form the checkpoint has."""
    src = make_dir("src", {"f": b"xyz"})
    assert repr(Checkpoint.from_dict({"k": 1})) == "Checkpoint(dict, keys=['k'])"
    assert repr(Checkpoint.from_directory(src)) == f"Checkpoint(path={str(src)!r})"
    packed = Checkpoint.from_directory(src).pack()
    assert repr(Checkpoint.from_packed(packed)) == "Checkpoint(packed, 3 bytes)"


def test_missing_directory_is_an_error_not_an_empty_checkpoint(tmp_path: Path) -> None:
    """Reading or packing a folder that does not exist raises instead of yielding nothing."""
    missing = tmp_path / "never_written"
    with pytest.raises(FileNotFoundError, match="never_written"):
        Checkpoint.from_directory(missing).to_dict()
    with pytest.raises(FileNotFoundError):
        PackedCheckpoint.from_local_dir(str(missing))
