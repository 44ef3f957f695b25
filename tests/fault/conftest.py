"""A local Ray instance for the fault tests that need no cluster of their own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import ray

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_ENV = {"env_vars": {"PYTHONPATH": TESTS_DIR}}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """Ray with 2 CPUs for one module; workers import trainables from tests/."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, runtime_env=WORKER_ENV)
    yield
    ray.shutdown()
