"""The package's top level: every public name resolves, and a worker's imports stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tune_ckpt


@pytest.mark.parametrize("name", tune_ckpt.__all__)
def test_every_public_name_resolves(name: str) -> None:
    """Each name in __all__ is importable from tune_ckpt and is the object of its module."""
    value = getattr(tune_ckpt, name)
    assert value is not None
    namespace: dict[str, object] = {}
    exec(f"from tune_ckpt import {name}", namespace)
    assert namespace[name] is value


def test_unknown_names_raise_attribute_error() -> None:
    """A misspelt name is an AttributeError naming it, as for any module."""
    with pytest.raises(AttributeError, match="'Tunr'"):
        _ = tune_ckpt.Tunr


def test_a_worker_does_not_import_the_driver() -> None:
    """What a trial's worker process imports (tune_ckpt.actor) leaves out the runner, the
    tuner, the progress display and rich: every new worker process would pay for them."""
    code = (
        "import sys, tune_ckpt.actor; "
        "print(sorted(m for m in sys.modules if m.startswith(('tune_ckpt', 'rich'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = eval(out)
    assert "tune_ckpt.actor" in loaded and "tune_ckpt.persistence" in loaded
    for heavy in ("tune_ckpt.tuner", "tune_ckpt.driver.loop", "tune_ckpt.progress", "rich"):
        assert heavy not in loaded, loaded
