"""Spot notices (tune_ckpt.spot): the AWS and GCP pollers against fake metadata services
on 127.0.0.1, and real drains of real cluster nodes by the watcher actor and by
``tune-ckpt spot-watch``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest
import ray
from metadata_server import MetadataServer
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from s3server import free_port

from tune_ckpt import spot
from tune_ckpt.config import SpotConfig
from tune_ckpt.driver import drains
from tune_ckpt.errors import SpotNoticeError


def test_aws_imdsv2_notice() -> None:
    with MetadataServer("aws").running() as server:
        source = spot.AwsNotices(server.url, timeout_s=1)
        assert source.poll() is None  # 404: nothing scheduled
        put, get = server.requests
        assert put[:2] == ("PUT", "/latest/api/token")
        assert put[2]["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
        assert get[:2] == ("GET", "/latest/meta-data/spot/instance-action")
        assert get[2]["x-aws-ec2-metadata-token"] == "fake-imdsv2-token"

        server.notice_at = 1_900_000_000.0
        server.token = "rotated"  # the old token is refused once: one fresh token
        notice = source.poll()
        assert notice == spot.SpotNotice(spot.Provider.AWS, "terminate", 1_900_000_000.0)
        assert [r[0] for r in server.requests[2:]] == ["GET", "PUT", "GET"]


def test_gcp_preempted_flag() -> None:
    clock = iter([500.0, 600.0])
    with MetadataServer("gcp").running() as server:
        source = spot.GcpNotices(server.url, timeout_s=1, clock=lambda: next(clock))
        assert source.poll() is None  # FALSE
        assert server.requests[0][2]["metadata-flavor"] == "Google"
        server.notice_at = 0.0
        expected = spot.SpotNotice(spot.Provider.GCP, "preempted", 530.0)  # 30 s from TRUE
        assert source.poll() == expected
        assert source.poll() == expected  # the deadline counts from the first TRUE


def test_auto_finds_the_cloud_and_a_missing_service_fails_fast() -> None:
    with MetadataServer("aws").running() as aws, MetadataServer("gcp").running() as gcp:
        auto = SpotConfig(metadata_url=aws.url)
        assert isinstance(spot.notice_source(auto), spot.AwsNotices)
        assert isinstance(spot.notice_source(SpotConfig(metadata_url=gcp.url)), spot.GcpNotices)
    nobody = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(SpotNoticeError, match="no AWS or GCP metadata service"):
        spot.notice_source(SpotConfig(metadata_url=nobody, timeout_s=0.5))
    assert time.monotonic() - started < 3
    with pytest.raises(SpotNoticeError, match=r"api/token: .*Connection refused"):
        spot.AwsNotices(nobody, timeout_s=0.5).poll()


def test_an_unreadable_notice_is_logged_once_and_polled_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = SpotConfig(provider="gcp", poll_s=0.01, metadata_url=f"http://127.0.0.1:{free_port()}")
    stop = threading.Event()
    polls = 0

    class Counting(spot.GcpNotices):
        def poll(self) -> spot.SpotNotice | None:
            nonlocal polls
            polls += 1
            if polls == 5:
                stop.set()
            return super().poll()

    with caplog.at_level(logging.WARNING, logger="tune_ckpt.spot"):
        node = "ab" * 28  # never drained: no notice comes
        assert spot.watch(config, node, stop=stop, source=Counting(config.metadata_url)) is None
    assert polls == 5
    assert [r.message.split(" (")[0] for r in caplog.records] == ["cannot read the spot notice"]


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("provider", "azure", "one of aws, gcp, auto"),
        ("poll_s", 0, "> 0"),
        ("margin_s", -1, ">= 0"),
        ("metadata_url", "169.254.169.254", "an http:// or https:// URL"),
        ("enabled", "yes", "True or False"),
    ],
)
def test_spot_config_names_a_bad_field(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=f"{field}={value!r} is invalid: .*{allowed}"):
        SpotConfig(**{field: value})  # type: ignore[arg-type]


@ray.remote(num_cpus=1)
class Busy:
    """Holds a node's CPU, as a trial does: a drained node exits only once idle."""

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


def _wait_until_draining(node_id: str, timeout: float = 15.0) -> dict[str, float | None]:
    give_up = time.monotonic() + timeout
    while node_id not in (listed := drains.draining_nodes()):
        if time.monotonic() > give_up:
            raise TimeoutError(f"{node_id} not draining after {timeout}s: {listed}")
        time.sleep(0.05)
    return listed


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tune_ckpt.cli", "spot-watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def test_a_notice_drains_only_its_own_node_from_the_actor_and_from_the_cli(
    cluster: Cluster,
) -> None:
    head = cluster.head_node.node_id
    node_a, node_b = (node.node_id for node in cluster.worker_nodes)
    busy = [
        Busy.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()  # type: ignore[attr-defined]
        for node in (node_a, node_b)
    ]
    assert ray.get([actor.node.remote() for actor in busy]) == [node_a, node_b]

    with MetadataServer("aws").running() as aws, MetadataServer("gcp").running() as gcp:
        # The watcher actor on node A reads the fake AWS; nothing else reads it.
        config = SpotConfig(provider="aws", poll_s=0.1, margin_s=20, metadata_url=aws.url)
        watchers = spot.start_watchers(config, skip={head, node_b})
        assert list(watchers) == [node_a]
        aws.wait_for_poll()
        assert drains.draining_nodes() == {}
        aws.notice_at = float(int(time.time()) + 120)  # AWS gives whole seconds
        listed = _wait_until_draining(node_a)
        assert listed == {node_a: aws.notice_at - 20}
        status = ray.get(watchers[node_a].status.remote())
        assert status == {
            "node_id": node_a,
            "watching": False,  # at most once
            "notice_time": aws.notice_at,
            "error": None,
        }
        assert spot.start_watchers(SpotConfig(enabled=False)) == {}
        # A draining node gets no watcher: nothing new can be placed there.
        gcp_config = SpotConfig(provider="gcp", metadata_url=gcp.url)
        extra = spot.start_watchers(gcp_config, skip={head})
        assert list(extra) == [node_b]
        ray.kill(extra[node_b])

        # Without --node-id, three nodes on one host cannot be told apart: a clear error.
        ambiguous = _cli("--address", cluster.address, "--metadata-url", gcp.url)
        _, err = ambiguous.communicate(timeout=60)
        assert ambiguous.returncode == 2
        assert "cannot tell which Ray node this host is: 3 alive nodes" in err

        # tune-ckpt spot-watch on node B reads the fake GCP.
        watcher = _cli(
            "--provider", "gcp", "--poll-s", "0.1", "--margin-s", "5",
            "--metadata-url", gcp.url, "--address", cluster.address, "--node-id", node_b,
        )  # fmt: skip
        assert watcher.stdout is not None
        assert watcher.stdout.readline().startswith(f"watching node {node_b}")
        gcp.wait_for_poll()
        assert node_b not in drains.draining_nodes()
        switched = time.time()
        gcp.notice_at = switched
        out, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 0, err
        assert f"drained node {node_b}" in out
        deadline = drains.draining_nodes()[node_b]
        assert deadline is not None
        assert switched + 30 - 5 <= deadline <= time.time() + 30 - 5
        assert set(drains.draining_nodes()) == {node_a, node_b}
