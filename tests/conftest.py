"""Ray for the tests: one local instance shared across modules, and multi-node clusters.

Trainables defined in test modules are pickled by reference (``integration.test_x.Cls``),
so Ray's workers need ``tests/`` on their path. They inherit it from the raylet, which is
started with it on PYTHONPATH (a runtime_env would do the same but costs about a second per
actor start). ``address="local"`` always starts a new instance, never joining a cluster some
other process left running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import ray
from ray.cluster_utils import Cluster
from s3server import MotoServer, run_moto

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

_running: str | None = None  # "local" or "cluster": what the current Ray instance is


def _put_tests_on_worker_path() -> None:
    # Set for the whole session, so every Ray process a test starts (nodes added to a
    # cluster mid-test, drivers in subprocesses) inherits it.
    current = os.environ.get("PYTHONPATH", "")
    if TESTS_DIR not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS_DIR, current) if p)


_put_tests_on_worker_path()


def _shutdown() -> None:
    global _running
    if ray.is_initialized():
        ray.shutdown()
    _running = None


@pytest.fixture(scope="session", autouse=True)
def _ray_cleanup() -> Iterator[None]:
    yield
    _shutdown()


def _start_local_ray() -> None:
    global _running
    if _running == "local" and ray.is_initialized():
        return
    _shutdown()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    _running = "local"


@pytest.fixture
def local_ray() -> None:
    """A local Ray instance with 2 CPUs, started on first use and shared until a cluster
    test replaces it."""
    _start_local_ray()


@pytest.fixture(scope="module")
def module_local_ray() -> None:
    """The same local Ray instance, for module-scoped fixtures (sweeps a module's tests
    share). Tests that use Ray themselves still ask for ``local_ray``."""
    _start_local_ray()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A multi-node cluster on this machine: a head without CPUs and two 1-CPU nodes. The
    driver is connected; nodes can be added and removed."""
    global _running
    _shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
    _running = "cluster"
    try:
        yield cluster
    finally:
        _shutdown()
        cluster.shutdown()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server for the session, with the test bucket; AWS_* set for pyarrow."""
    env = pytest.MonkeyPatch()
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_PROFILE"):
        env.delenv(name, raising=False)
    try:
        yield from run_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    finally:
        env.undo()
