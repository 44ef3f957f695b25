"""StorageLocation: URI resolution, the small file wrappers on both backends, and the
translation of backend failures into STORAGE_ERRORS naming the path."""

from __future__ import annotations

import os
import pickle
import time
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from tune_ckpt.errors import (
    STORAGE_ERRORS,
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
    UnsafePathError,
)
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation, backend_errors, translate_error

from .conftest import (
    BUCKET,
    QUICK_RETRY,
    Backend,
    MakeDir,
    MotoServer,
    free_port,
    unreachable_fs,
)

CKPT = "trial_0/checkpoint_000001"

# -- resolution ------------------------------------------------------------------------------


def test_resolve_local_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative local path resolves to an absolute root on the local filesystem."""
    monkeypatch.chdir(tmp_path)
    location = StorageLocation.resolve("results/")
    assert isinstance(location.fs, pafs.LocalFileSystem)
    assert location.root == str(tmp_path / "results")
    assert location.display_root == str(tmp_path / "results")
    assert location.is_local
    assert location.local_os_path("a/b") == str(tmp_path / "results" / "a" / "b")


def test_resolve_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'~' is expanded, and the default storage path lives in the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert StorageLocation.resolve("~/exp").root == str(tmp_path / "exp")
    assert StorageLocation.resolve().root == str(tmp_path / "tune_ckpt_results")


def test_resolve_file_uri(tmp_path: Path) -> None:
    """A file:// URI resolves to the local filesystem and path."""
    location = StorageLocation.resolve(f"file://{tmp_path}/exp")
    assert location.is_local
    assert location.root == f"{tmp_path}/exp"
    location.write_bytes("x.txt", b"1")
    assert (tmp_path / "exp" / "x.txt").read_bytes() == b"1"


def test_resolve_given_filesystem(tmp_path: Path) -> None:
    """A path inside a given filesystem (SubTreeFileSystem over local disk) works."""
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    location = StorageLocation.resolve("exp/", storage_filesystem=fs)
    assert location.root == "exp"
    assert location.is_local
    assert location.local_os_path("t") == f"{tmp_path}/exp/t"
    store = CheckpointStore(location)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"data")
    store.commit_local_dir(CKPT, str(src), 1)
    assert store.list_committed("trial_0") == [CKPT]
    assert (tmp_path / "exp" / CKPT / "f").read_bytes() == b"data"


def test_resolve_s3_uri(s3: Backend) -> None:
    """An s3:// URI with endpoint options resolves to S3, displayed without the query."""
    location = s3.location
    assert isinstance(location.fs, pafs.S3FileSystem)
    assert not location.is_local
    assert location.local_os_path("x") is None
    assert location.root.startswith(f"{BUCKET}/exp-")
    assert location.display_root == s3.uri.split("?")[0]
    assert location.uri("t/c") == f"{location.display_root}/t/c"


def test_aws_endpoint_url_is_honoured(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, make_dir: MakeDir
) -> None:
    """s3://bucket/prefix uses AWS_ENDPOINT_URL, which pyarrow alone ignores."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_server.endpoint}")
    unique = uuid.uuid4().hex
    location = StorageLocation.resolve(f"s3://{BUCKET}/env-endpoint-{unique}")
    assert location.display_root == f"s3://{BUCKET}/env-endpoint-{unique}"
    store = CheckpointStore(location)
    store.commit_local_dir(CKPT, str(make_dir({"w.bin": b"weights"})), 1)
    assert store.list_committed("trial_0") == [CKPT]
    # The object is really on the moto server, seen through an independent client.
    raw = moto_server.filesystem()
    path = f"{BUCKET}/env-endpoint-{unique}/{CKPT}/w.bin"
    with raw.open_input_stream(path) as stream:
        assert stream.readall() == b"weights"
    store.delete(CKPT)


def test_aws_endpoint_url_s3_takes_precedence(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://{moto_server.endpoint}")
    location = StorageLocation.resolve(f"s3://{BUCKET}/s3-endpoint-{uuid.uuid4().hex}")
    location.write_bytes("probe.txt", b"ok")
    assert location.read_bytes("probe.txt") == b"ok"
    location.delete_file("probe.txt")


def test_uri_endpoint_wins_over_environment(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint_override in the URI is used even when AWS_ENDPOINT_URL points elsewhere."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    location = StorageLocation.resolve(moto_server.uri(BUCKET, f"uri-wins-{uuid.uuid4().hex}"))
    location.write_bytes("probe.txt", b"ok")
    assert location.read_bytes("probe.txt") == b"ok"
    location.delete_file("probe.txt")


def test_location_pickles(s3: Backend, make_dir: MakeDir) -> None:
    """A StorageLocation survives pickling (workers receive it) and still reaches S3."""
    s3.store.commit_local_dir(CKPT, str(make_dir({"f": b"x"})), 1)
    clone = pickle.loads(pickle.dumps(s3.location))
    assert clone.root == s3.location.root
    assert CheckpointStore(clone).list_committed("trial_0") == [CKPT]


# -- wrappers, on both backends --------------------------------------------------------------


def test_write_read_exists_delete(backend: Backend) -> None:
    """write_bytes/read_bytes/exists/is_file/delete_file behave alike on both backends."""
    loc = backend.location
    assert not loc.exists("a/b.txt")
    loc.write_bytes("a/b.txt", b"hello")
    assert loc.exists("a/b.txt") and loc.is_file("a/b.txt")
    assert loc.exists("a") and not loc.is_file("a")
    assert loc.read_bytes("a/b.txt") == b"hello"
    loc.write_bytes("a/b.txt", b"replaced")
    assert loc.read_bytes("a/b.txt") == b"replaced"
    assert backend.files() == ["a/b.txt"]  # no temporary files left next to it
    loc.delete_file("a/b.txt")
    assert not loc.exists("a/b.txt")
    loc.delete_file("a/b.txt")  # missing_ok by default
    with pytest.raises(StorageNotFoundError) as info:
        loc.delete_file("a/b.txt", missing_ok=False)
    assert info.value.path == loc.uri("a/b.txt")


def test_append_bytes(backend: Backend) -> None:
    """append_bytes creates the file, then appends (rewriting on object stores)."""
    loc = backend.location
    loc.append_bytes("t/result.json", b'{"i": 1}\n')
    loc.append_bytes("t/result.json", b'{"i": 2}\n')
    assert loc.read_bytes("t/result.json") == b'{"i": 1}\n{"i": 2}\n'


def test_read_missing_file_is_not_found(backend: Backend) -> None:
    """Reading a missing file raises StorageNotFoundError naming it."""
    with pytest.raises(StorageNotFoundError) as info:
        backend.location.read_bytes("nope/file.bin")
    assert info.value.path == backend.location.uri("nope/file.bin")
    assert isinstance(info.value.__cause__, OSError)


def test_filler_fills_and_detects_short_files(backend: Backend) -> None:
    """filler() fills a view with the file; a file shorter than the view raises."""
    loc = backend.location
    data = os.urandom(100_000)
    loc.write_bytes("f.bin", data)
    view = memoryview(bytearray(len(data)))
    loc.filler("f.bin")(view)
    assert bytes(view) == data
    with pytest.raises(StorageError, match="file ended after 100000 bytes"):
        loc.filler("f.bin")(memoryview(bytearray(len(data) + 1)))


def test_list_and_delete_dir(backend: Backend) -> None:
    """list_dir lists (recursively on request); delete_dir removes a whole folder."""
    loc = backend.location
    for rel in ("d/a", "d/e/b", "other"):
        loc.write_bytes(rel, b"x")
    top = {loc.relative_to_root(i.path) for i in loc.list_dir("d")}
    assert top == {"d/a", "d/e"}
    assert backend.files("d") == ["d/a", "d/e/b"]
    assert loc.list_dir("missing") == []
    loc.delete_dir("d")
    assert backend.files() == ["other"]
    loc.delete_dir("d")  # missing_ok


def test_child_and_paths(backend: Backend) -> None:
    """child() re-roots under a relative path; joins reject escapes."""
    loc = backend.location
    child = loc.child("exp/trial")
    assert child.root == loc.path("exp/trial")
    assert child.uri("x") == loc.uri("exp/trial/x")
    child.write_bytes("x", b"1")
    assert loc.read_bytes("exp/trial/x") == b"1"
    assert loc.relative_to_root(loc.path("exp/trial/x")) == "exp/trial/x"
    with pytest.raises(ValueError, match="not under the storage root"):
        loc.relative_to_root("/elsewhere/x")
    for bad in ("../x", "/abs", "a/../../b"):
        with pytest.raises(UnsafePathError):
            loc.path(bad)


# -- failures --------------------------------------------------------------------------------


def test_missing_bucket_raises_storage_error_naming_path(
    moto_server: MotoServer, make_dir: MakeDir
) -> None:
    """Every operation on a missing bucket raises StorageNotFoundError naming the path."""
    location = StorageLocation.resolve(moto_server.uri("no-such-bucket", "x"))
    store = CheckpointStore(location)
    src = str(make_dir({"f": b"x"}))
    operations = {
        "list": lambda: store.list_committed("trial_0"),
        "commit": lambda: store.commit_local_dir(CKPT, src, 1),
        "read": lambda: store.read(CKPT),
        "sweep": lambda: store.sweep("trial_0"),
        "write": lambda: location.write_bytes("trial_0/params.json", b"{}"),
        "makedirs": lambda: location.makedirs("trial_0"),
    }
    for name, operation in operations.items():
        with pytest.raises(STORAGE_ERRORS) as info:
            operation()
        assert isinstance(info.value, StorageNotFoundError), (name, info.value)
        assert info.value.path.startswith("s3://no-such-bucket/x"), name
        assert "s3://no-such-bucket/x" in str(info.value), name


def test_unreachable_endpoint_raises_unavailable(
    moto_server: MotoServer, make_dir: MakeDir
) -> None:
    """Every operation against a closed port raises StorageUnavailableError naming the path."""
    location = StorageLocation.resolve(
        "bucket/exp", storage_filesystem=unreachable_fs(), retry=QUICK_RETRY
    )
    store = CheckpointStore(location)
    src = str(make_dir({"f": b"x"}))
    operations = {
        "list": lambda: store.list_committed("trial_0"),
        "commit": lambda: store.commit_local_dir(CKPT, src, 1),
        "read": lambda: store.read(CKPT),
        "verify": lambda: store.verify(CKPT),
        "delete": lambda: store.delete(CKPT),
        "read_bytes": lambda: location.read_bytes("x"),
    }
    for name, operation in operations.items():
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError) as info:
            operation()
        assert time.monotonic() - started < 5, name
        assert info.value.path.startswith("s3:bucket/exp"), (name, info.value.path)


def test_unreachable_endpoint_through_uri(moto_server: MotoServer) -> None:
    """An s3:// URI naming a closed port raises StorageUnavailableError naming the URI."""
    # pyarrow's S3 URIs take no timeout or retry options: this waits out its default retries.
    uri = f"s3://{BUCKET}/exp?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
    store = CheckpointStore(StorageLocation.resolve(uri, retry=QUICK_RETRY))
    with pytest.raises(StorageUnavailableError) as info:
        store.list_committed("trial_0")
    assert info.value.path == f"s3://{BUCKET}/exp/trial_0"
    assert f"s3://{BUCKET}/exp/trial_0" in str(info.value)


def test_local_root_under_a_regular_file(tmp_path: Path, make_dir: MakeDir) -> None:
    """A root below a regular file fails with STORAGE_ERRORS (tests run as root: no chmod)."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"not a folder")
    root = f"{blocker}/sub"
    location = StorageLocation.resolve(root)
    store = CheckpointStore(location)
    src = str(make_dir({"f": b"x"}))
    operations = {
        "commit": lambda: store.commit_local_dir(CKPT, src, 1),
        "list": lambda: store.list_committed("trial_0"),
        "read": lambda: store.read(CKPT),
        "write": lambda: location.write_bytes("trial_0/params.json", b"{}"),
        "stage": lambda: store.stage_local(CKPT),
    }
    for name, operation in operations.items():
        with pytest.raises(STORAGE_ERRORS) as info:
            operation()
        assert root in str(info.value), name
    assert blocker.read_bytes() == b"not a folder"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (FileNotFoundError(2, "Path does not exist 'b/k'"), StorageNotFoundError),
        (
            OSError(
                "When listing objects under key 'x/' in bucket 'b': AWS Error NO_SUCH_BUCKET "
                "during ListObjectsV2 operation: The specified bucket does not exist"
            ),
            StorageNotFoundError,
        ),
        (
            OSError("Bucket 'b' not found. To create buckets, enable the allow_bucket_creation"),
            StorageNotFoundError,
        ),
        (PermissionError(13, "Permission denied"), StoragePermissionError),
        (
            OSError("AWS Error ACCESS_DENIED during HeadObject operation: No response body."),
            StoragePermissionError,
        ),
        (ConnectionRefusedError(111, "refused"), StorageUnavailableError),
        (TimeoutError("slow"), StorageUnavailableError),
        (
            OSError(
                "When getting information for key 'x' in bucket 'b': AWS Error "
                "NETWORK_CONNECTION during HeadObject operation: curlCode: 7, Could not "
                "connect to server"
            ),
            StorageUnavailableError,
        ),
        (OSError("something else entirely"), StorageError),
        (OSError(), StorageError),
    ],
)
def test_translate_error(exc: OSError, expected: type[StorageError]) -> None:
    """Backend exceptions map onto the StorageError subclass their kind or message implies."""
    translated = translate_error(exc, "s3://b/p")
    assert type(translated) is expected
    assert translated.path == "s3://b/p"
    assert translated.cause


def test_translate_keeps_storage_errors() -> None:
    """An error that already is a StorageError is passed through unchanged."""
    original = StorageUnavailableError("a", "b")
    assert translate_error(original, "other") is original


def test_backend_errors_chains_the_cause() -> None:
    """backend_errors turns OSErrors into StorageErrors (chained) and passes others."""
    original = FileNotFoundError(2, "gone")
    with pytest.raises(StorageNotFoundError) as info, backend_errors("/p"):
        raise original
    assert info.value.__cause__ is original
    with pytest.raises(KeyError), backend_errors("/p"):
        raise KeyError("not a storage failure")


def test_credentials_in_the_uri_are_never_displayed(moto_server: MotoServer) -> None:
    """Keys given in the URI reach the filesystem but not the location's displayed form."""
    uri = moto_server.uri(BUCKET, "secret-test").replace("s3://", "s3://AKIAEXAMPLE:s3cr3t@")
    location = StorageLocation.resolve(uri)
    assert location.display_root == f"s3://{BUCKET}/secret-test"
    assert "s3cr3t" not in location.uri("trial/checkpoint_000001")
    location.write_bytes("probe.txt", b"x")  # the credentials still reach the backend
    assert location.read_bytes("probe.txt") == b"x"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "AWS Error NETWORK_CONNECTION during ListObjectsV2 operation: curlCode: 7, Could not "
            "connect to server; Details: Failed to connect to 127.0.0.1:40351 after 0 ms",
            StorageUnavailableError,
        ),
        ("AWS Error ACCESS_DENIED during HeadObject operation: HTTP 403", StoragePermissionError),
        ("Bucket 'b' not found", StorageNotFoundError),
        ("something else went wrong on port 14030", StorageError),
    ],
)
def test_backend_messages_map_to_the_right_error(message: str, expected: type) -> None:
    """Ports and hosts in a message do not decide its kind: port 40351 is not HTTP 403."""
    error = translate_error(OSError(message), "s3://b/x")
    assert type(error) is expected
    assert error.path == "s3://b/x"
