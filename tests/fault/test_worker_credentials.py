"""Workers that cannot write the storage send their checkpoints through the object store.

On a moto server that authenticates every request as IAM does (``run_moto_with_iam``): the
driver always has a user allowed everything on the bucket; the workers have no credentials
at all, a read-only user, or a user whose commits are refused from some point of the sweep
on. Ray is started anew for each sweep, so that its workers get exactly the environment the
test gives them, and shut down afterwards (the shared instance starts again on next use).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
import ray
from s3server import REGION, AccessKey, IamMotoServer, run_moto_with_iam

import tune_ckpt as tune
from tune_ckpt import air
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.persistence import (
    PROBE_PREFIX,
    CheckpointWriter,
    TrialContext,
    choose_transfer,
)
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.lease import MARKER_PREFIX
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME
from tune_ckpt.trainable import TrainableState

from ._trainables import Accumulator, accumulate_fn, expected_total

ITERATIONS = 4
WARNING = "cannot write the experiment's storage"
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamMotoServer]:
    yield from run_moto_with_iam(tmp_path_factory.mktemp("moto-iam") / "moto.log")


@pytest.fixture(scope="module")
def users(iam_moto: IamMotoServer) -> dict[str, AccessKey]:
    """``rw`` may do anything on the bucket, ``ro`` only read and list it, ``no_delete``
    read, list and create but not delete."""
    # moto checks HEAD on a bucket as s3:HeadBucket (AWS as s3:ListBucket).
    read = ["s3:GetObject", "s3:ListBucket", "s3:HeadBucket"]
    return {
        "rw": iam_moto.add_user("rw", ["s3:*"]),
        "ro": iam_moto.add_user("ro", read),
        "no_delete": iam_moto.add_user("no_delete", [*read, "s3:PutObject"]),
    }


def _location(server: IamMotoServer, key: AccessKey, prefix: str) -> StorageLocation:
    fs = pafs.S3FileSystem(
        endpoint_override=server.endpoint,
        scheme="http",
        region=REGION,
        access_key=key.access_key_id,
        secret_key=key.secret_access_key,
    )
    return StorageLocation(fs, f"{server.bucket}/{prefix}", f"s3://{server.bucket}/{prefix}")


def _context(experiment: StorageLocation, marker: str, trial_dir: str = "t0") -> TrialContext:
    return TrialContext(
        trial_id=trial_dir,
        trial_dir=trial_dir,
        experiment=experiment,
        transfer="auto",
        marker=marker,
        checkpoint_config=CheckpointConfig(),
    )


def _new_experiment(server: IamMotoServer, driver: AccessKey) -> tuple[str, str]:
    """A fresh prefix with a driver's marker in it; (prefix, marker)."""
    prefix = f"exp-{uuid.uuid4().hex[:8]}"
    marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    _location(server, driver, prefix).write_bytes(marker, b"tune_ckpt")
    return prefix, marker


# -- the worker's side, in this process ----------------------------------------------------


def test_auto_transfer_needs_create_and_delete(
    iam_moto: IamMotoServer, users: dict[str, AccessKey]
) -> None:
    """Reading the driver's marker is not enough: a worker that cannot create or cannot
    delete a file beside it goes through the object store, with the refusal as the cause.
    The probe file of a worker that can is gone afterwards."""
    prefix, marker = _new_experiment(iam_moto, users["rw"])
    driver = _location(iam_moto, users["rw"], prefix)
    choices = {
        name: choose_transfer(_context(_location(iam_moto, users[name], prefix), marker))
        for name in ("rw", "ro", "no_delete")
    }
    assert choices["rw"].shared and choices["rw"].fallback is None
    for name in ("ro", "no_delete"):
        choice = choices[name]
        assert not choice.shared
        assert choice.fallback is not None and "StoragePermissionError" in choice.fallback.cause
    probes = [
        info.path
        for info in driver.list_dir()
        if os.path.basename(info.path).startswith(PROBE_PREFIX)
    ]
    assert len(probes) == 1, probes  # no_delete's, which it could not remove


def test_refused_commit_is_sent_packed(
    iam_moto: IamMotoServer,
    users: dict[str, AccessKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The commit that writes the files but is refused the manifest: the writer returns the
    same checkpoint packed, nothing half-written is listed, its local temporary folder is
    gone, and the writer (and the next one in this process) stays on the object store."""
    worker = iam_moto.add_user(f"w-{uuid.uuid4().hex[:6]}", ["s3:*"])
    prefix, marker = _new_experiment(iam_moto, users["rw"])
    driver = CheckpointStore(_location(iam_moto, users["rw"], prefix))
    ctx = _context(_location(iam_moto, worker, prefix), marker)
    writer = CheckpointWriter(ctx)
    assert writer.shared

    trainable = Accumulator({"a": 2}, "t0")
    first = trainable.train()
    assert writer.save_trainable(trainable, (first,)).committed
    iam_moto.deny(worker.user, ["s3:PutObject"], f"{prefix}/*/{MANIFEST_NAME}")
    second = trainable.train()
    local_tmp = tmp_path / "tmp"
    local_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(local_tmp))
    saved = writer.save_trainable(trainable, (second,))

    assert saved.packed is not None and saved.path == "t0/checkpoint_000002"
    assert saved.fallback is not None and "a commit to" in saved.fallback.cause
    assert saved.results == (second,)
    assert driver.location.is_file(f"{saved.path}/state.json")  # the refused commit's file
    assert driver.list_committed("t0") == ["t0/checkpoint_000001"]
    assert list(local_tmp.iterdir()) == []
    assert not writer.shared and not CheckpointWriter(ctx).shared

    committed = driver.commit_packed(saved.path, saved.packed, saved.iteration, saved.results)
    assert driver.list_committed("t0") == ["t0/checkpoint_000001", saved.path]
    assert driver.verify(saved.path).manifest.results == (second,)
    assert committed.manifest_digest == driver.verify(saved.path).manifest_digest


def test_refused_commit_of_a_reported_checkpoint_is_sent_packed(
    iam_moto: IamMotoServer, users: dict[str, AccessKey]
) -> None:
    """The function API's path: a reported dict checkpoint whose commit is refused comes
    back packed, whole."""
    worker = iam_moto.add_user(f"w-{uuid.uuid4().hex[:6]}", ["s3:*"])
    prefix, marker = _new_experiment(iam_moto, users["rw"])
    writer = CheckpointWriter(_context(_location(iam_moto, worker, prefix), marker))
    assert writer.shared
    iam_moto.deny(worker.user, ["s3:PutObject"], f"{prefix}/*")
    saved = writer.save_checkpoint(Checkpoint.from_dict({"total": 7}), TrainableState(3))
    assert saved.packed is not None and saved.fallback is not None
    assert Checkpoint.from_packed(saved.packed).to_dict() == {"total": 7}
    store = CheckpointStore(_location(iam_moto, users["rw"], prefix))
    assert store.list_committed("t0") == []


# -- sweeps on Ray -------------------------------------------------------------------------


@pytest.fixture
def ray_for_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start Ray with the given AWS variables as the only credentials its workers see;
    afterwards the driver's own variables can be set. Shut down at the end."""

    def start(worker_env: dict[str, str]) -> None:
        if ray.is_initialized():
            ray.shutdown()  # conftest starts its shared instance again when next asked
        for name in CREDENTIAL_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookups
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        for name, value in worker_env.items():
            monkeypatch.setenv(name, value)
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )

    try:
        yield start
    finally:
        ray.shutdown()


def _driver_credentials(monkeypatch: pytest.MonkeyPatch, key: AccessKey) -> None:
    """As in a notebook: credentials set in the driver's environment after ray.init()."""
    for name, value in key.env().items():
        monkeypatch.setenv(name, value)


def _sweep(trainable: Any, uri: str, space: dict[str, Any]) -> tune.ResultGrid:
    return tune.Tuner(
        trainable,
        param_space={"a": tune.grid_search([1, 2]), **space},
        run_config=air.RunConfig(
            storage_path=uri,
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=1),
        ),
    ).fit()


def _check_sweep(
    results: tune.ResultGrid, server: IamMotoServer, driver: AccessKey, prefix: str
) -> None:
    """Fault-free totals, no failure, and every checkpoint committed on S3 and verified."""
    store = CheckpointStore(_location(server, driver, f"{prefix}/exp"))
    assert len(results) == 2
    for result in results:
        assert result.error is None
        assert result.metrics["total"] == expected_total(ITERATIONS, result.config["a"])
        assert result.metrics["num_failures"] == 0
        trial_dir = os.path.basename(result.path)
        committed = store.list_committed(trial_dir)
        assert [store.verify(p).iteration for p in committed] == list(range(1, ITERATIONS + 1))


def _fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("tune_ckpt") and r.levelname == "WARNING" and WARNING in r.getMessage()
    ]


def _node_ids() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n["Alive"]]


def test_credentials_only_in_the_driver(
    iam_moto: IamMotoServer,
    users: dict[str, AccessKey],
    ray_for_workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ray.init(), then the credentials in os.environ, then fit(): the workers have none, so
    every checkpoint travels through the object store; one warning for the one node, naming
    it and how to give the workers access."""
    ray_for_workers({})
    _driver_credentials(monkeypatch, users["rw"])
    prefix = f"driver-only-{uuid.uuid4().hex[:8]}"
    caplog.set_level("WARNING", logger="tune_ckpt")
    results = _sweep(Accumulator, iam_moto.uri(iam_moto.bucket, prefix), {})
    _check_sweep(results, iam_moto, users["rw"], prefix)
    (warning,) = _fallback_warnings(caplog)
    (node,) = _node_ids()
    assert node in warning and "runtime_env" in warning and "StoragePermissionError" in warning


def test_read_only_workers(
    iam_moto: IamMotoServer,
    users: dict[str, AccessKey],
    ray_for_workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Workers with a read-only role (function API): they see the marker but cannot write;
    the sweep finishes through the object store, with one warning."""
    ray_for_workers(users["ro"].env())
    _driver_credentials(monkeypatch, users["rw"])
    prefix = f"read-only-{uuid.uuid4().hex[:8]}"
    caplog.set_level("WARNING", logger="tune_ckpt")
    results = _sweep(accumulate_fn, iam_moto.uri(iam_moto.bucket, prefix), {"iterations": 99})
    _check_sweep(results, iam_moto, users["rw"], prefix)
    (warning,) = _fallback_warnings(caplog)
    assert _node_ids()[0] in warning and "StoragePermissionError" in warning


class RevokedMidSweep(Accumulator):
    """Accumulator that, at ``config["revoke_at"]``, has the workers' user refused every
    manifest write from then on (a role changed mid-sweep): that iteration's commit writes
    the checkpoint's files, then is refused its manifest."""

    def step(self) -> dict[str, Any]:
        result = super().step()
        revoke = self.config["revoke"]
        if self.iteration + 1 == revoke["at"]:
            admin = AccessKey("admin", revoke["key_id"], revoke["secret"])
            server = IamMotoServer("127.0.0.1", revoke["port"], admin, revoke["bucket"])
            server.deny(revoke["user"], ["s3:PutObject"], f"{revoke['prefix']}/*/{MANIFEST_NAME}")
        return result


def test_commit_refused_mid_sweep(
    iam_moto: IamMotoServer,
    users: dict[str, AccessKey],
    ray_for_workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Workers commit their first checkpoint themselves; then their commits are refused:
    each switches to the object store and resends the checkpoint, no trial fails, every
    checkpoint is on S3 and verifies."""
    worker = iam_moto.add_user(f"w-{uuid.uuid4().hex[:6]}", ["s3:*"])
    ray_for_workers(worker.env())
    _driver_credentials(monkeypatch, users["rw"])
    prefix = f"revoked-{uuid.uuid4().hex[:8]}"
    revoke = {
        "at": 2,
        "user": worker.user,
        "prefix": prefix,
        "port": iam_moto.port,
        "bucket": iam_moto.bucket,
        "key_id": iam_moto.admin.access_key_id,
        "secret": iam_moto.admin.secret_access_key,
    }
    caplog.set_level("WARNING", logger="tune_ckpt")
    results = _sweep(RevokedMidSweep, iam_moto.uri(iam_moto.bucket, prefix), {"revoke": revoke})
    _check_sweep(results, iam_moto, users["rw"], prefix)
    (warning,) = _fallback_warnings(caplog)
    assert "a commit to" in warning and _node_ids()[0] in warning
