"""Fake cloud instance-metadata services on 127.0.0.1 for the spot-notice tests: real HTTP
servers (http.server in a thread) that answer as AWS IMDSv2 and GCP do, and switch from
"no interruption" to a notice when a test says so."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "fake-imdsv2-token"


class MetadataServer:
    """Either cloud's metadata service. With ``notice_at`` (epoch seconds) set, AWS
    answers the instance-action with it and GCP answers ``preempted`` with TRUE. AWS refuses
    reads without the current ``token`` (as IMDSv2-only instances do). ``requests`` holds
    (method, path, headers with lowercase names) of every request."""

    def __init__(self, cloud: str) -> None:
        self.cloud = cloud
        self.notice_at: float | None = None
        self.action = "terminate"
        self.token = TOKEN
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.polled = threading.Event()  # set on every read of the notice
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _headers(self) -> dict[str, str]:
                return {name.lower(): value for name, value in self.headers.items()}

            def _answer(self, status: int, body: str = "", **headers: str) -> None:
                data = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                server.requests.append(("PUT", self.path, self._headers()))
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                if server.cloud == "aws" and self.path == "/latest/api/token" and ttl:
                    self._answer(200, server.token)
                else:
                    self._answer(400 if server.cloud == "aws" else 405)

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, self._headers()))
                if server.cloud == "aws":
                    self._aws_get()
                else:
                    self._gcp_get()

            def _aws_get(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != server.token:
                    self._answer(401)
                elif self.path == "/latest/meta-data/spot/instance-action":
                    server.polled.set()
                    if server.notice_at is None:
                        self._answer(404, "Not Found")
                    else:
                        when = datetime.fromtimestamp(server.notice_at, timezone.utc)
                        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                        self._answer(200, f'{{"action": "{server.action}", "time": "{stamp}"}}')
                else:
                    self._answer(404)

            def _gcp_get(self) -> None:
                if self.headers.get("Metadata-Flavor") != "Google":
                    self._answer(403)
                elif self.path == "/computeMetadata/v1/instance/preempted":
                    server.polled.set()
                    flag = "FALSE" if server.notice_at is None else "TRUE"
                    self._answer(200, flag, Metadata_Flavor="Google")
                elif self.path == "/computeMetadata/v1/":
                    self._answer(200, "instance/\nproject/\n", Metadata_Flavor="Google")
                else:
                    self._answer(404, Metadata_Flavor="Google")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def wait_for_poll(self, timeout: float = 10.0) -> None:
        """Block until the next read of the notice."""
        self.polled.clear()
        if not self.polled.wait(timeout):
            raise TimeoutError(f"nobody read the notice at {self.url} in {timeout}s")

    @contextmanager
    def running(self) -> Iterator[MetadataServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
