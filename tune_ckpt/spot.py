"""Spot notices: poll the cloud's interruption notice and drain the node before it goes.

Clouds announce a spot interruption through their instance metadata service: AWS two
minutes ahead (IMDSv2: a token from ``PUT /latest/api/token``, then
``GET /latest/meta-data/spot/instance-action``, 404 until an interruption is scheduled,
then ``{"action": "terminate", "time": "...Z"}``), GCP about 30 s ahead
(``GET /computeMetadata/v1/instance/preempted`` with ``Metadata-Flavor: Google``:
``FALSE``, then ``TRUE``). Nobody listens by default. ``watch`` polls it and, on a notice,
drains the node through Ray with a deadline of the notice's time minus a margin, so the
sweep's driver sees the drain and saves and moves the node's trials in time.

It runs either as a 0-CPU actor per node that the runner starts (``start_watchers``) or
in the foreground on a node (``tune-ckpt spot-watch``). Only the standard library talks to
the metadata service, with short timeouts.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tune_ckpt.config import METADATA_URL, SpotConfig
from tune_ckpt.driver import drains
from tune_ckpt.errors import SpotNoticeError

__all__ = [
    "AwsNotices",
    "GcpNotices",
    "Provider",
    "SpotConfig",
    "SpotNotice",
    "SpotWatcher",
    "notice_source",
    "start_watchers",
    "watch",
]

logger = logging.getLogger(__name__)

GCP_NOTICE_S = 30.0  # GCP's notice: about 30 s between "preempted" and the stop
_AWS_TOKEN_TTL_S = 21600  # the longest IMDSv2 allows; a fresh token is asked on a 401


class Provider(enum.Enum):
    AWS = "aws"
    GCP = "gcp"


@dataclass(frozen=True)
class SpotNotice:
    """An interruption announced by the cloud: ``action`` (AWS: terminate, stop or
    hibernate; GCP: preempted) at ``time`` (epoch seconds)."""

    provider: Provider
    action: str
    time: float


def _request(
    url: str, method: str, headers: dict[str, str], timeout_s: float
) -> tuple[int, str, Any]:
    """(status, body, response headers) of one request; 4xx are answers, not errors."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500:
            return exc.code, exc.read().decode(errors="replace"), exc.headers
        raise SpotNoticeError(f"{method} {url}: HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:  # unreachable, refused, timed out, bad URL
        raise SpotNoticeError(f"{method} {url}: {exc}") from exc


class AwsNotices:
    """Reads AWS's spot interruption notice through IMDSv2."""

    provider = Provider.AWS

    def __init__(self, base_url: str = METADATA_URL, timeout_s: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._token: str | None = None

    def _fresh_token(self) -> str:
        status, body, _ = _request(
            f"{self.base_url}/latest/api/token",
            "PUT",
            {"X-aws-ec2-metadata-token-ttl-seconds": str(_AWS_TOKEN_TTL_S)},
            self.timeout_s,
        )
        if status != 200 or not body:
            raise SpotNoticeError(f"IMDSv2 at {self.base_url} gave no token (HTTP {status})")
        return body

    def poll(self) -> SpotNotice | None:
        """The notice, or None while no interruption is scheduled."""
        url = f"{self.base_url}/latest/meta-data/spot/instance-action"
        for attempt in range(2):
            if self._token is None:
                self._token = self._fresh_token()
            headers = {"X-aws-ec2-metadata-token": self._token}
            status, body, _ = _request(url, "GET", headers, self.timeout_s)
            if status == 401 and attempt == 0:  # the token expired: one fresh one
                self._token = None
                continue
            break
        if status == 404:
            return None
        if status != 200:
            raise SpotNoticeError(f"GET {url}: HTTP {status}")
        try:
            notice = json.loads(body)
            when = datetime.fromisoformat(notice["time"].replace("Z", "+00:00"))
            return SpotNotice(Provider.AWS, str(notice["action"]), when.timestamp())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SpotNoticeError(f"GET {url}: not a spot notice: {body[:200]!r}") from exc


class GcpNotices:
    """Reads GCP's preemption flag; the instance stops about 30 s after it turns TRUE."""

    provider = Provider.GCP

    def __init__(
        self,
        base_url: str = METADATA_URL,
        timeout_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._clock = clock
        self._seen: SpotNotice | None = None  # the deadline counts from the first TRUE

    def poll(self) -> SpotNotice | None:
        """The notice, or None while the instance is not preempted."""
        if self._seen is not None:
            return self._seen
        url = f"{self.base_url}/computeMetadata/v1/instance/preempted"
        status, body, _ = _request(url, "GET", {"Metadata-Flavor": "Google"}, self.timeout_s)
        if status != 200 or body.strip() not in ("TRUE", "FALSE"):
            raise SpotNoticeError(f"GET {url}: HTTP {status} {body[:200]!r}")
        if body.strip() == "FALSE":
            return None
        self._seen = SpotNotice(Provider.GCP, "preempted", self._clock() + GCP_NOTICE_S)
        return self._seen


NoticeSource = AwsNotices | GcpNotices


def notice_source(config: SpotConfig) -> NoticeSource:
    """The poller ``config`` asks for; for ``auto``, the cloud whose metadata answers
    (GCP's answers with ``Metadata-Flavor: Google``, AWS's gives an IMDSv2 token)."""
    base, timeout = config.metadata_url, config.timeout_s
    if config.provider == "aws":
        return AwsNotices(base, timeout)
    if config.provider == "gcp":
        return GcpNotices(base, timeout)
    errors = []
    try:
        _, _, headers = _request(
            f"{base.rstrip('/')}/computeMetadata/v1/", "GET", {"Metadata-Flavor": "Google"}, timeout
        )
        if headers.get("Metadata-Flavor") == "Google":
            return GcpNotices(base, timeout)
    except SpotNoticeError as exc:
        errors.append(str(exc))
    aws = AwsNotices(base, timeout)
    try:
        aws._token = aws._fresh_token()
        return aws
    except SpotNoticeError as exc:
        errors.append(str(exc))
    raise SpotNoticeError(
        f"no AWS or GCP metadata service at {base} ({'; '.join(errors)}): set provider"
    )


def watch(
    config: SpotConfig,
    node_id: str,
    gcs_address: str | None = None,
    stop: threading.Event | None = None,
    source: NoticeSource | None = None,
) -> SpotNotice | None:
    """Poll every ``config.poll_s`` until a notice, then drain ``node_id`` with a deadline
    of the notice's time minus ``config.margin_s``, once; returns the notice (None when
    ``stop`` was set first). A failed read is logged (once until reads work again) and
    tried again at the next poll; a failed drain raises ``DrainError``."""
    stop = stop or threading.Event()
    failing = False
    while not stop.is_set():
        try:
            if source is None:
                source = notice_source(config)
            notice = source.poll()
            failing = False
        except SpotNoticeError as exc:
            if not failing:
                logger.warning(
                    "cannot read the spot notice (trying every %gs): %s", config.poll_s, exc
                )
            failing = True
            notice = None
        if notice is not None:
            deadline = notice.time - config.margin_s
            logger.warning(
                "spot notice (%s %s in %.0fs): draining node %s, deadline in %.0fs",
                notice.provider.value,
                notice.action,
                notice.time - time.time(),
                node_id,
                deadline - time.time(),
            )
            drains.drain_node(
                node_id, deadline, reason=f"spot notice: {notice.action}", gcs_address=gcs_address
            )
            return notice
        stop.wait(config.poll_s)
    return None


class SpotWatcher:
    """Watches its own node's spot notice from a thread (run as a 0-CPU Ray actor pinned
    to the node; see ``start_watchers``)."""

    def __init__(self, config: SpotConfig) -> None:
        import ray

        self.node_id = str(ray.get_runtime_context().get_node_id())
        self._gcs_address = str(ray.get_runtime_context().gcs_address)
        self._config = config
        self._stop = threading.Event()
        self._notice: SpotNotice | None = None
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="spot-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._notice = watch(self._config, self.node_id, self._gcs_address, self._stop)
        except Exception as exc:  # a refused drain: reported by status()
            self._error = f"{type(exc).__name__}: {exc}"
            logger.error("spot watcher on node %s: %s", self.node_id, self._error)

    def status(self) -> dict[str, Any]:
        """The node, whether a notice came (and when the instance goes), and any error."""
        return {
            "node_id": self.node_id,
            "watching": self._thread.is_alive(),
            "notice_time": None if self._notice is None else self._notice.time,
            "error": self._error,
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def start_watchers(config: SpotConfig, skip: set[str] | frozenset[str] = frozenset()) -> dict:
    """Start one ``SpotWatcher`` actor (0 CPUs, pinned to its node) on each alive node
    that is not draining and not in ``skip``; returns node id -> actor handle. Call it
    again with the watched nodes in ``skip`` to cover nodes that joined since."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not config.enabled:
        return {}
    draining = drains.draining_nodes()
    remote = ray.remote(num_cpus=0, max_restarts=0)(SpotWatcher)
    handles = {}
    for node in ray.nodes():
        node_id = node["NodeID"]
        if not node["Alive"] or node_id in skip or node_id in draining:
            continue
        handles[node_id] = remote.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
        ).remote(config)
    return handles
