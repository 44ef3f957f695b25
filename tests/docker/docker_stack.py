"""The pieces for running the docker/ scripts without containers: a Ray head and a worker
(separate `ray start` processes, token authentication on) and an S3 endpoint (moto's server),
all on 127.0.0.1.

(A helper module, not a conftest.py: tests/docker has no __init__.py, so that it is not an
importable package named "docker" shadowing the Docker SDK that moto installs.)

Everything runs under one short temporary folder (Ray's socket paths must stay short): each
Ray node has its own Ray temp directory there, and every port is a free one picked here, so
nothing collides with other Ray instances on the machine. Teardown never uses `ray stop`
(which stops every Ray process on the machine): it sends SIGTERM to the `ray start` processes
started here, then kills whatever still runs with that temporary folder on its command line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
BUCKET = "tune-ckpt-docker-test"
STORAGE_PATH = f"s3://{BUCKET}/sweeps"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "<no log>"


def ray_client_installed() -> bool:
    """Whether `ray start --head` would start a Ray Client server (it needs ray[client])."""
    from ray._private.utils import get_ray_client_dependency_error

    return get_ray_client_dependency_error() is None


@dataclass
class Stack:
    """The running pieces and how to reach them."""

    root: Path
    env: dict[str, str]
    head_env: dict[str, str]
    worker_env: dict[str, str]
    head_address: str
    s3_endpoint: str
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def node_env(self, name: str, **extra: str) -> dict[str, str]:
        """Settings for one more Ray node on this machine: its own temp dir and agent port."""
        return {
            **self.env,
            "RAY_TEMP_DIR": str(self.root / name),
            "RAY_DASHBOARD_AGENT_LISTEN_PORT": str(free_port()),
            **extra,
        }

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a long-running process in its own session, output to <name>.log."""
        with open(self.log(name), "wb") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, proc))
        return proc

    def run(
        self, argv: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run a script to completion; stdout and stderr together."""
        return subprocess.run(
            argv,
            env=env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    def healthcheck(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, str(DOCKER / "healthcheck.py")], env, timeout=60)

    def wait_healthy(
        self, name: str, proc: subprocess.Popen[bytes], env: dict[str, str], timeout: float
    ) -> None:
        """Poll healthcheck.py until this node is active in the cluster."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{tail(self.log(name))}")
            check = self.healthcheck(env)
            if check.returncode == 0:
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{name} not healthy after {timeout:g} s:\n{check.stdout}\n"
                    f"{tail(self.log(name))}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to each process started here, last started first (a Ray node drains and
        stops its children; the head goes after its workers), then SIGKILL to anything still
        running from this stack's folder."""
        for _name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
                proc.wait()
        kill_processes_mentioning(f"{self.root}/")


def kill_processes_mentioning(marker: str, grace: float = 10.0) -> None:
    """SIGKILL every process whose command line contains ``marker`` (a unique folder), and
    wait for them to go. Ray's workers, raylets and agents name their temp dir there."""
    needle = marker.encode()
    deadline = time.monotonic() + grace
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return
        for pid in found:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def wait_listening(
    name: str, proc: subprocess.Popen[bytes], port: int, stack: Stack, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}:\n{tail(stack.log(name))}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not listen on {port}:\n{tail(stack.log(name))}")
            time.sleep(0.1)


@contextlib.contextmanager
def running_stack(**worker_settings: str) -> Iterator[Stack]:
    """moto, a Ray head and one 2-CPU Ray worker, started with the docker/ scripts;
    ``worker_settings`` are extra environment variables of the worker."""
    # A short folder under /tmp: Ray's Unix socket paths live below it and must stay short.
    root = Path(tempfile.mkdtemp(prefix="tckd-", dir="/tmp"))
    (root / "home").mkdir()
    token = root / "ray_auth_token"
    token.write_text(secrets.token_hex(32) + "\n")
    s3_port, gcs_port = free_port(), free_port()
    venv_bin = os.path.dirname(sys.executable)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env = {
        **base,
        "PATH": os.pathsep.join([venv_bin, base.get("PATH", "")]),
        "HOME": str(root / "home"),  # nothing read from or written to the real ~/.ray, ~/.aws
        "PYTHONUNBUFFERED": "1",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_OBJECT_STORE_MEMORY": str(100 * 1000 * 1000),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TUNE_CKPT_STORAGE_PATH": STORAGE_PATH,
    }
    head_address = f"127.0.0.1:{gcs_port}"
    stack = Stack(root, env, {}, {}, head_address, f"127.0.0.1:{s3_port}")
    stack.head_env = stack.node_env(
        "head",
        RAY_PORT=str(gcs_port),
        RAY_DASHBOARD_HOST="127.0.0.1",
        RAY_DASHBOARD_PORT=str(free_port()),
        RAY_HEAD_NUM_CPUS="0",
    )
    if ray_client_installed():
        stack.head_env["RAY_CLIENT_SERVER_PORT"] = str(free_port())
    stack.worker_env = stack.node_env(
        "worker", RAY_HEAD_ADDRESS=head_address, RAY_WORKER_NUM_CPUS="2", **worker_settings
    )
    try:
        moto = stack.start(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            env,
        )
        head = stack.start("head", [str(DOCKER / "start-head.sh")], stack.head_env)
        wait_listening("moto", moto, s3_port, stack, timeout=30)
        # The worker can join once the head's GCS listens; both then come up together.
        wait_listening("head", head, gcs_port, stack, timeout=90)
        worker = stack.start("worker", [str(DOCKER / "start-worker.sh")], stack.worker_env)
        stack.wait_healthy("head", head, stack.head_env, timeout=90)
        stack.wait_healthy("worker", worker, stack.worker_env, timeout=90)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
