"""A real S3 endpoint for tests: moto's server mode as a subprocess on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

BUCKET = "tune-ckpt-tests"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MotoServer:
    """A running moto S3 server."""

    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def uri(self, bucket: str, prefix: str) -> str:
        """An s3:// URI for ``bucket/prefix`` on this server, as a user would write it."""
        return f"s3://{bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"

    def filesystem(self, **options: object) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http", **options)


def run_moto(log_path: Path) -> Iterator[MotoServer]:
    """Start moto on a free port with the test bucket created; stop it when resumed."""
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the process ends
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto server exited with {proc.returncode}: {log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto server did not listen within 20 s: {log_path.read_text()}")
                time.sleep(0.05)
        server = MotoServer("127.0.0.1", port)
        server.filesystem(allow_bucket_creation=True).create_dir(BUCKET)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
