"""The README's Python examples run as written, in order, in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import ray

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    """Every ```python block of the README, in order."""
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_readme_python_examples_run(tmp_path: Path) -> None:
    """The examples, one script in a subprocess joined to this test's Ray instance, with a
    fresh home folder for the default storage path: each ends without error, and the
    experiments they write are where the README says."""
    blocks = python_blocks()
    assert len(blocks) >= 6, "the README lost its examples"
    script = tmp_path / "readme_examples.py"
    script.write_text("\n\n".join(blocks))
    env = dict(os.environ)
    token = Path.home() / ".ray" / "auth_token"  # Ray's token auth looks under HOME
    if token.is_file() and "RAY_AUTH_TOKEN_PATH" not in env:
        env["RAY_AUTH_TOKEN_PATH"] = str(token)
    env["HOME"] = str(tmp_path / "home")
    env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "home" / "tune_ckpt_results"
    assert (results / "my_experiment" / "experiment_journal.jsonl").is_file()
    # The callbacks example: a TensorBoard run in each of its two trial folders.
    assert len(list(results.glob("lr_sweep/*/events.out.tfevents.*"))) == 2
    class_api = [p for p in results.iterdir() if p.name.startswith("MyTrainable_")]
    assert len(class_api) == 1, sorted(p.name for p in results.iterdir())
    # The quick start prints the best config, its score and its checkpoint path.
    assert f"{results}/MyTrainable_" in proc.stdout and "checkpoint_000020" in proc.stdout
