"""The scripts the containers run, run the same way without containers (docker_stack.py): a
Ray head and worker started by start-head.sh / start-worker.sh with token authentication on,
moto as the S3 store, then health checks, token checks, bucket creation, and the example sweep
(run-job.sh) with a worker process killed mid-run and its checkpoints read back from S3."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import blake3
import pyarrow.fs as pafs
import pytest
from docker_stack import BUCKET, DOCKER, Stack, free_port, running_stack

ITERATIONS = 6  # the smallest the example takes: the kill is at iteration 5
TRIALS = 4  # example_sweep.LEARNING_RATES
MANIFEST = ".tune_ckpt_manifest.json"


def s3(stack: Stack) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(endpoint_override=stack.s3_endpoint, scheme="http")


def read(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return bytes(stream.readall())


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """moto, a Ray head and one 2-CPU Ray worker, started with the docker/ scripts."""
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def bucket(stack: Stack) -> list[str]:
    """Run create-bucket.py twice (it must be idempotent); return both outputs."""
    outputs = []
    for _ in range(2):
        run = stack.run([sys.executable, str(DOCKER / "create-bucket.py")], stack.env, timeout=60)
        assert run.returncode == 0, run.stdout
        outputs.append(run.stdout)
    return outputs


def test_head_and_worker_are_active_nodes(stack: Stack) -> None:
    for env in (stack.head_env, stack.worker_env):
        check = stack.healthcheck(env)
        assert check.returncode == 0, check.stdout
        assert "healthy: node" in check.stdout


def test_healthcheck_fails_without_a_node(stack: Stack) -> None:
    check = stack.healthcheck(stack.node_env("nothing-here", RAY_HEAD_ADDRESS=stack.head_address))
    assert check.returncode == 1
    assert "no raylet runs here" in check.stdout


def test_token_authentication_is_on(stack: Stack) -> None:
    wrong = {**stack.env, "RAY_AUTH_TOKEN": "0" * 64}
    status = stack.run(["ray", "status", "--address", stack.head_address], wrong, timeout=60)
    assert status.returncode != 0, status.stdout
    assert "InvalidAuthToken" in status.stdout, status.stdout[-2000:]
    right = stack.run(["ray", "status", "--address", stack.head_address], stack.env, timeout=60)
    assert right.returncode == 0, right.stdout
    # The token file ends with a newline (as `print` writes it); the bare token, as a user
    # would pass it in RAY_AUTH_TOKEN, is the same token.
    token = Path(stack.env["RAY_AUTH_TOKEN_PATH"]).read_text()
    assert token.endswith("\n")
    bare = {**stack.env, "RAY_AUTH_TOKEN": token.strip()}
    right = stack.run(["ray", "status", "--address", stack.head_address], bare, timeout=60)
    assert right.returncode == 0, right.stdout


def test_scripts_refuse_to_run_without_token_authentication(stack: Stack) -> None:
    disabled = {**stack.worker_env, "RAY_AUTH_MODE": "disabled"}
    run = stack.run([str(DOCKER / "start-worker.sh")], disabled, timeout=30)
    assert run.returncode == 2
    assert "token authentication only" in run.stdout
    no_token = {**stack.worker_env, "RAY_AUTH_TOKEN_PATH": str(stack.root / "missing")}
    for script in ("start-head.sh", "start-worker.sh", "run-job.sh"):
        run = stack.run([str(DOCKER / script)], no_token, timeout=30)
        assert run.returncode == 2, (script, run.stdout)
        assert "no Ray authentication token" in run.stdout


def test_create_bucket_is_idempotent(stack: Stack, bucket: list[str]) -> None:
    assert f"created bucket {BUCKET}" in bucket[0]
    assert f"bucket {BUCKET} exists" in bucket[1]
    assert s3(stack).get_file_info(BUCKET).type == pafs.FileType.Directory


def test_sweep_finishes_with_committed_checkpoints(stack: Stack, bucket: list[str]) -> None:
    experiment = "docker-test-sweep"
    env = stack.node_env(
        "job",
        RAY_HEAD_ADDRESS=stack.head_address,
        TUNE_CKPT_EXPERIMENT=experiment,
        EXAMPLE_ITERATIONS=str(ITERATIONS),
        EXAMPLE_STEP_SECONDS="0.15",
        EXAMPLE_MIN_CPUS="2",
        EXAMPLE_WAIT_SECONDS="60",
    )
    run = stack.run([str(DOCKER / "run-job.sh")], env, timeout=150)
    (stack.root / "job-output.log").write_text(run.stdout)
    assert run.returncode == 0, run.stdout[-6000:]
    assert "killing this worker process" in run.stdout
    assert "SWEEP OK" in run.stdout

    # What is in the bucket, read back with pyarrow alone.
    fs = s3(stack)
    root = f"{BUCKET}/sweeps/{experiment}"
    assert fs.get_file_info(f"{root}/worker-killed-once").type == pafs.FileType.File
    trials = [
        info.path
        for info in fs.get_file_info(pafs.FileSelector(root))
        if info.type == pafs.FileType.Directory and Path(info.path).name.startswith("Quadratic_")
    ]
    assert len(trials) == TRIALS, trials
    expected = [f"checkpoint_{i:06d}" for i in range(2, ITERATIONS + 1, 2)]
    restored = 0
    for trial in trials:
        folders = sorted(
            Path(info.path).name
            for info in fs.get_file_info(pafs.FileSelector(trial))
            if info.type == pafs.FileType.Directory
            and Path(info.path).name.startswith("checkpoint_")
        )
        assert folders == expected, (trial, folders)
        for folder in folders:
            manifest = json.loads(read(fs, f"{trial}/{folder}/{MANIFEST}"))
            assert manifest["algorithm"] == "blake3"
            assert [entry["path"] for entry in manifest["files"]] == ["state.json"]
            for entry in manifest["files"]:
                data = read(fs, f"{trial}/{folder}/{entry['path']}")
                assert len(data) == entry["size"]
                assert blake3.blake3(data).hexdigest() == entry["hash"]
            state = json.loads(read(fs, f"{trial}/{folder}/state.json"))
            assert state["iteration"] == int(folder.split("_")[1])
        results = [json.loads(line) for line in read(fs, f"{trial}/result.json").splitlines()]
        assert [r["training_iteration"] for r in results] == list(range(1, ITERATIONS + 1))
        if any(r["restored_from"] for r in results):
            restored += 1
            # Killed at iteration 5, so restored from checkpoint_000004, not from scratch.
            assert {r["restored_from"] for r in results if r["training_iteration"] > 4} == {4}
    assert restored == 1


def test_sweep_fails_when_the_bucket_is_missing(stack: Stack) -> None:
    env = {
        **stack.env,
        "RAY_HEAD_ADDRESS": stack.head_address,
        "RAY_JOB_JOIN_CLUSTER": "0",  # the driver uses a node already on this machine
        "TUNE_CKPT_STORAGE_PATH": f"s3://no-such-bucket-{free_port()}/sweeps",
        "EXAMPLE_MIN_CPUS": "2",
    }
    run = stack.run([str(DOCKER / "run-job.sh")], env, timeout=120)
    assert run.returncode != 0, run.stdout[-4000:]
    assert "SWEEP FAILED: the storage cannot be used" in run.stdout, run.stdout[-4000:]
    assert "no-such-bucket" in run.stdout
