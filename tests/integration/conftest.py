"""One local Ray instance (2 CPUs) shared by every integration test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import ray

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session", autouse=True)
def ray_instance() -> Iterator[None]:
    """Start Ray once for the session; workers import trainables from these test modules."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": TESTS_DIR}},
    )
    yield
    ray.shutdown()
