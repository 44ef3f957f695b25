"""Helpers shared by the integration tests (no fixtures, no Ray calls)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tune_ckpt import air

MANIFEST = ".tune_ckpt_manifest.json"


def run_config(tmp_path: Path, **kwargs: Any) -> air.RunConfig:
    """A quiet RunConfig storing under ``tmp_path`` with a fixed experiment name."""
    kwargs.setdefault("name", "exp")
    kwargs.setdefault("verbose", 0)
    return air.RunConfig(storage_path=str(tmp_path), **kwargs)


def checkpoint_dirs(trial_path: str) -> list[str]:
    """Names of the checkpoint folders in a trial folder, sorted."""
    return sorted(n for n in os.listdir(trial_path) if n.startswith("checkpoint_"))


def checkpoint_names(*iterations: int) -> list[str]:
    """``checkpoint_<iteration:06d>`` names, sorted."""
    return sorted(f"checkpoint_{i:06d}" for i in iterations)


def result_lines(trial_path: str) -> list[dict[str, Any]]:
    """Every line of a trial's result.json, parsed."""
    with open(os.path.join(trial_path, "result.json")) as f:
        return [json.loads(line) for line in f.read().splitlines()]


def iterations(trial_path: str) -> list[int]:
    """The training_iteration of every line of a trial's result.json."""
    return [r["training_iteration"] for r in result_lines(trial_path)]


def fail_once(marker: str) -> None:
    """Raise the first time this is called for ``marker`` (a file path), never again."""
    if not os.path.exists(marker):
        Path(marker).touch()
        raise RuntimeError(f"injected failure ({os.path.basename(marker)})")


def intervals_overlap(spans: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) spans that are open at the same moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = current = 0
    for _, delta in events:
        current += delta
        most = max(most, current)
    return most
