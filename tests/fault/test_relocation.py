"""An interrupted experiment moved from local disk to S3, resumed there, and moved back."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from s3server import BUCKET, MotoServer

import tune_ckpt as tune
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

from ._driver import ITERATIONS, kill_driver_mid_sweep
from ._trainables import accumulate_fn, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")


def test_experiment_moves_local_to_s3_and_back(tmp_path: Path, moto_server: MotoServer) -> None:
    """Resumed on S3, every trial finishes with fault-free metrics and S3 paths; copied back
    to local disk, the finished experiment restores with local paths and the same results."""
    kill_driver_mid_sweep(tmp_path / "local", signal.SIGKILL)
    prefix = f"moved-{uuid.uuid4().hex[:8]}/exp"
    s3 = moto_server.filesystem(access_key="testing", secret_key="testing")
    pafs.copy_files(
        str(tmp_path / "local" / "exp"),
        f"{BUCKET}/{prefix}",
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=s3,
    )
    # Credentials in the URI travel with the filesystem to the workers, which commit there.
    s3_uri = moto_server.uri(BUCKET, prefix).replace("s3://", "s3://testing:testing@")
    on_s3 = tune.Tuner.restore(s3_uri, accumulate_fn).fit()
    for result in on_s3:
        assert result.error is None
        assert result.metrics["total"] == expected_total(ITERATIONS, result.config["a"])
        assert result.path.startswith(f"s3://{BUCKET}/{prefix}/")
        assert result.checkpoint is not None
        assert result.checkpoint.path.startswith(f"{BUCKET}/{prefix}/")
        store = CheckpointStore(StorageLocation(s3, f"{BUCKET}/{prefix}", s3_uri))
        store.verify(result.checkpoint.path.removeprefix(f"{BUCKET}/{prefix}/"))

    back = tmp_path / "back" / "exp"
    pafs.copy_files(
        f"{BUCKET}/{prefix}",
        str(back),
        source_filesystem=s3,
        destination_filesystem=pafs.LocalFileSystem(),
    )
    local = tune.Tuner.restore(str(back), accumulate_fn).fit()
    assert [r.metrics["total"] for r in local] == [r.metrics["total"] for r in on_s3]
    for result in local:
        assert result.path.startswith(str(back))
        assert result.checkpoint is not None and result.checkpoint.path.startswith(str(back))
        # The driver's sweep checkpoints every 4 iterations: the last one is at 28.
        assert result.checkpoint.to_dict()["iteration"] == ITERATIONS - ITERATIONS % 4
