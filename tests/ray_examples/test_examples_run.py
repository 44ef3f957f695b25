"""A fast subset of Ray Tune's examples on tune_ckpt, imports swapped, in the test command.

The whole harness (``python -m tests.ray_examples``) is too slow for every run of the suite
(about 6 minutes on tune_ckpt); these three, under a minute together, cover a callback asking
for checkpoints of a class trainable, a logger callback with custom trial names and folders,
and PBT (``stop={"done": True}``, ``reset_config``, time sharing on two CPUs). The Optuna
examples take 30 seconds or more each; ``OptunaSearch`` is covered by
``tests/integration/test_search_run.py``.
Each runs as the harness runs it (its own process, working directory, ``HOME`` and Ray),
then the harness's checks: ``tune-ckpt verify`` exits 0 and no warning about a missing or
bad checkpoint or exploit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .checks import check
from .runner import Side, Status, cleanup, examples_dir, run

FAST = ("custom_checkpointing_with_callback", "logging_example", "pbt_example")
TIMEOUT_S = 180.0  # each takes seconds; the margin is for a loaded machine


@pytest.mark.parametrize("name", FAST)
def test_example_passes_on_tune_ckpt(name: str, tmp_path: Path) -> None:
    assert (examples_dir() / f"{name}.py").is_file(), f"{name}.py is not in this ray wheel"
    result = run(name, Side.TUNE_CKPT, tmp_path, TIMEOUT_S)
    try:
        tail = "\n".join(result.tail)
        assert result.status is Status.PASS, f"{name}: {result.status.value}\n{tail}"
        checks = check(result.home, result.log)
    finally:
        cleanup(result)
    assert checks.ok, checks.to_json()  # verify exits 0, no checkpoint or exploit warning
    if name != "logging_example":  # the others checkpoint (pbt_example: whether it
        # exploits depends on its unseeded noise, so the count is not asserted)
        assert checks.verify_exit == 0 and checks.verified > 0, checks.to_json()
