"""Every integration test runs on the shared local Ray instance (see tests/conftest.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture(autouse=True)
def _on_local_ray(local_ray: None) -> None:
    """Start (or reuse) the local Ray instance for each integration test."""
