"""``tune-ckpt`` on an experiment swept to S3 (moto on 127.0.0.1), addressed by a plain
``s3://`` URI: the subprocess finds the endpoint in AWS_ENDPOINT_URL, as a user's shell
would have it."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pyarrow.fs as pafs
import pytest
from s3server import BUCKET, MotoServer

import tune_ckpt as tune
from tune_ckpt import air, journal
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.staging import TMP_PREFIX

from ._trainables import Counter
from .conftest import assert_usage_error, run_cli, run_json, table_row

ITERATIONS = 2


@dataclass(frozen=True)
class S3Sweep:
    """A finished one-trial experiment on S3.

    Attributes:
        env: the CLI's environment (AWS_ENDPOINT_URL and the AWS_* keys).
        fs: an S3 filesystem on the moto server, to change objects behind the CLI's back.
        prefix: the folder holding the experiment ``exp``, as ``bucket/key``.
        trial_id, trial_dir: its trial.
    """

    env: dict[str, str]
    fs: pafs.S3FileSystem
    prefix: str
    trial_id: str
    trial_dir: str

    def uri(self, *parts: str, prefix: str | None = None) -> str:
        return "/".join([f"s3://{prefix or self.prefix}", *parts])

    def copy(self) -> str:
        """A copy of the experiment under a fresh prefix (for tests that change it)."""
        prefix = f"{BUCKET}/cli-copy-{uuid.uuid4().hex[:8]}"
        pafs.copy_files(
            f"{self.prefix}/exp",
            f"{prefix}/exp",
            source_filesystem=self.fs,
            destination_filesystem=self.fs,
        )
        return prefix


@pytest.fixture(scope="module")
def s3_sweep(moto_server: MotoServer, module_local_ray: None) -> S3Sweep:
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    # Credentials in the URI travel with the filesystem to the workers, which commit there.
    storage = moto_server.uri(BUCKET, prefix).replace("s3://", "s3://testing:testing@")
    tune.Tuner(
        Counter,
        param_space={"lr": 1.0},
        run_config=air.RunConfig(
            storage_path=storage,
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
            checkpoint_config=air.CheckpointConfig(checkpoint_frequency=1),
        ),
    ).fit()
    base, query = storage.split("?", 1)
    _, trials = journal.load(StorageLocation.resolve(f"{base}/exp?{query}"))
    (trial,) = trials.values()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://{moto_server.endpoint}"}
    fs = moto_server.filesystem(access_key="testing", secret_key="testing")
    return S3Sweep(env, fs, f"{BUCKET}/{prefix}", trial.trial_id, trial.trial_dir)


def test_ls_and_show_on_s3(s3_sweep: S3Sweep) -> None:
    """ls of the folder and of the experiment, and show of the trial, read S3."""
    folder = run_json("ls", s3_sweep.uri(), env=s3_sweep.env)
    (exp,) = folder["experiments"]
    assert (exp["name"], exp["path"]) == ("exp", s3_sweep.uri("exp"))
    assert (exp["num_trials"], exp["statuses"]) == (1, {"TERMINATED": 1})

    sizes = [
        s3_sweep.fs.get_file_info(
            f"{s3_sweep.prefix}/exp/{s3_sweep.trial_dir}/checkpoint_{i:06d}/state.json"
        ).size
        for i in range(1, ITERATIONS + 1)
    ]
    (row,) = run_json("ls", s3_sweep.uri("exp"), env=s3_sweep.env)["trials"]
    assert row["trial_id"] == s3_sweep.trial_id
    assert (row["status"], row["iterations"]) == ("TERMINATED", ITERATIONS)
    assert (row["num_checkpoints"], row["checkpoint_bytes"]) == (ITERATIONS, sum(sizes))
    table = run_cli("ls", s3_sweep.uri("exp"), env=s3_sweep.env)
    assert table.returncode == 0, table.stderr
    assert table_row(table.stdout, s3_sweep.trial_id)[:4] == [
        s3_sweep.trial_id,
        "TERMINATED",
        str(ITERATIONS),
        str(ITERATIONS),
    ]

    doc = run_json("show", s3_sweep.uri("exp", s3_sweep.trial_dir), env=s3_sweep.env)
    assert doc["trial_id"] == s3_sweep.trial_id
    assert doc["path"] == s3_sweep.uri("exp", s3_sweep.trial_dir)
    assert [c["iteration"] for c in doc["checkpoints"]] == [1, 2]
    assert [c["metrics"]["score"] for c in doc["checkpoints"]] == [1.0, 2.0]
    assert [c["size"] for c in doc["checkpoints"]] == sizes
    assert all(c["verified"] for c in doc["checkpoints"])


def test_verify_and_gc_on_s3(s3_sweep: S3Sweep) -> None:
    """verify passes, then names a checkpoint whose object was overwritten; gc --dry-run
    lists planted leftovers and keeps them, gc removes them."""
    prefix = s3_sweep.copy()
    experiment = s3_sweep.uri("exp", prefix=prefix)
    clean = run_json("verify", experiment, env=s3_sweep.env)
    assert (clean["verified"], clean["bad"]) == (ITERATIONS, 0)

    trial = f"{prefix}/exp/{s3_sweep.trial_dir}"
    damaged = f"{trial}/checkpoint_000001/state.json"
    with s3_sweep.fs.open_input_stream(damaged) as src:
        data = bytearray(src.readall())
    data[0] ^= 0xFF  # same size, other bytes: only the hash can tell
    with s3_sweep.fs.open_output_stream(damaged) as out:
        out.write(bytes(data))
    bad = run_json("verify", experiment, env=s3_sweep.env, code=1)
    assert (bad["verified"], bad["bad"]) == (ITERATIONS - 1, 1)
    (failing,) = [c for c in bad["checkpoints"] if not c["ok"]]
    assert failing["path"] == f"s3://{trial}/checkpoint_000001"
    assert failing["problems"] == ["state.json: content hash differs from the manifest"]
    table = run_cli("verify", experiment, env=s3_sweep.env)
    assert table.returncode == 1
    assert f"s3://{trial}/checkpoint_000001" in table.stdout

    leftovers = [f"{trial}/checkpoint_000099", f"{trial}/{TMP_PREFIX}000004_deadbeef"]
    for folder in leftovers:
        with s3_sweep.fs.open_output_stream(f"{folder}/model.bin") as out:
            out.write(b"half-written")
    dry = run_json("gc", experiment, "--dry-run", env=s3_sweep.env)
    assert sorted(r["path"] for r in dry["removed"]) == sorted(f"s3://{p}" for p in leftovers)
    for folder in leftovers:
        assert s3_sweep.fs.get_file_info(f"{folder}/model.bin").is_file
    done = run_json("gc", experiment, env=s3_sweep.env)
    assert done["removed"] == dry["removed"]
    for folder in leftovers:
        assert s3_sweep.fs.get_file_info(f"{folder}/model.bin").type == pafs.FileType.NotFound
    assert len(run_json("ls", experiment, env=s3_sweep.env)["trials"]) == 1


def test_missing_bucket_is_a_one_line_error(s3_sweep: S3Sweep) -> None:
    """A bucket that does not exist: exit 2 with one line naming it."""
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/sweeps"
    assert_usage_error(run_cli("ls", missing, env=s3_sweep.env), missing.removeprefix("s3://"))


def test_unreachable_endpoint_gives_up_after_the_storage_retry_budget() -> None:
    """Nobody answers at the endpoint: the command retries for --storage-retry-s, then
    reports the outage as one line with the attempts it made; a negative budget is a usage
    error."""
    from s3server import free_port

    uri = f"s3://{BUCKET}/x?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    proc = run_cli("ls", uri, "--storage-retry-s", "1", env=env)
    line = assert_usage_error(proc, "StorageUnavailableError", "gave up after")
    assert "attempts" in line
    assert_usage_error(run_cli("ls", "/tmp", "--storage-retry-s", "-1"), "-1", "seconds")
