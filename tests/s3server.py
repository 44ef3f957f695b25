"""A real S3 endpoint for tests: moto's server mode as a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _moto_process(args: Callable[[int], list[str]], log_path: Path) -> Iterator[MotoServer]:
    """Run a moto server (``python`` with ``args(port)``) on 127.0.0.1 and a free port;
    yield once it listens; stop it when resumed."""
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the process ends
    proc = subprocess.Popen(
        [sys.executable, *args(port)],
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
        yield MotoServer("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_moto(log_path: Path) -> Iterator[MotoServer]:
    """Start moto on a free port with the test bucket created; stop it when resumed."""
    args = ["-m", "moto.server", "-H", "127.0.0.1", "-p"]
    for server in _moto_process(lambda port: [*args, str(port)], log_path):
        server.filesystem(allow_bucket_creation=True).create_dir(BUCKET)
        yield server


# -- moto with IAM authentication ----------------------------------------------------------

REGION = "us-east-1"


@dataclass(frozen=True)
class AccessKey:
    """An IAM user's access key on a moto server that authenticates requests."""

    user: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """The environment variables that make AWS clients (pyarrow, boto3) use this key."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@dataclass(frozen=True)
class IamMotoServer(MotoServer):
    """A moto server that checks every request's signature and the caller's IAM policies.
    ``admin`` may do anything (IAM included); ``bucket`` exists."""

    admin: AccessKey
    bucket: str

    def client(self, service: str, key: AccessKey | None = None) -> Any:
        """A boto3 client signing with ``key`` (the admin's by default)."""
        import boto3

        key = key or self.admin
        return boto3.client(
            service,
            endpoint_url=f"http://{self.endpoint}",
            region_name=REGION,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
        )

    def add_user(self, name: str, actions: list[str]) -> AccessKey:
        """A user allowed ``actions`` (such as ``"s3:GetObject"``) on the bucket only."""
        bucket_arn = f"arn:aws:s3:::{self.bucket}"
        return _create_user(self.client("iam"), name, actions, [bucket_arn, f"{bucket_arn}/*"])

    def deny(self, user: str, actions: list[str], resource_pattern: str) -> None:
        """Deny ``user`` the ``actions`` on keys matching ``resource_pattern`` (``*``
        matches anything, ``/`` included) from now on; an explicit deny beats any allow."""
        statement = {
            "Effect": "Deny",
            "Action": actions,
            "Resource": f"arn:aws:s3:::{self.bucket}/{resource_pattern}",
        }
        self.client("iam").put_user_policy(
            UserName=user,
            PolicyName="deny",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )


def _create_user(iam: Any, name: str, actions: list[str], resources: list[str]) -> AccessKey:
    iam.create_user(UserName=name)
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    iam.put_user_policy(
        UserName=name,
        PolicyName="allow",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return AccessKey(name, key["AccessKeyId"], key["SecretAccessKey"])


def run_moto_with_iam(log_path: Path, bucket: str = "tune-ckpt-iam") -> Iterator[IamMotoServer]:
    """A separate moto server that authenticates and authorizes every request as IAM does
    (unsigned ones included, see ``moto_iam_server``), with ``bucket`` and an admin user.

    moto checks nothing until told to: the bucket and the admin are created first, then
    ``/moto-api/reset-auth`` with a count of 0 turns authentication on for every request
    that follows. The session's ``moto_server`` is not affected (another process).
    """
    import boto3

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_iam_server.py")
    for server in _moto_process(lambda port: [script, "127.0.0.1", str(port)], log_path):
        setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        endpoint = f"http://{server.endpoint}"
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **setup).create_bucket(
            Bucket=bucket
        )
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, **setup)
        admin = _create_user(iam, "admin", ["*"], ["*"])
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",  # authenticate from the next request on
            method="POST",
            headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()
        yield IamMotoServer(server.host, server.port, admin, bucket)
