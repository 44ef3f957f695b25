"""The trial context's answers, from a TrialContext, without Ray."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from tune_ckpt import context
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.persistence import TrialContext
from tune_ckpt.storage.location import StorageLocation


def _ctx(location: StorageLocation, **kwargs: Any) -> TrialContext:
    return TrialContext(
        "abc_00001", "fn_abc_00001", location, "auto", "-", CheckpointConfig(), **kwargs
    )


def test_local_storage_gives_the_trial_folder(tmp_path: Path) -> None:
    """On local storage the trial's folder is its trial dir; names and resources are the
    context's, the trial name defaulting to the folder's."""
    location = StorageLocation.resolve(str(tmp_path / "my_exp"))
    tune_ctx = context.TuneContext(_ctx(location, resources={"CPU": 2.0, "GPU": 1.0}))
    assert tune_ctx.get_trial_dir() == str(tmp_path / "my_exp" / "fn_abc_00001")
    assert os.path.isdir(tune_ctx.get_trial_dir())
    assert tune_ctx.get_trial_name() == "fn_abc_00001"
    assert tune_ctx.get_experiment_name() == "my_exp"
    assert dict(tune_ctx.get_trial_resources()) == {"CPU": 2.0, "GPU": 1.0}
    assert tune_ctx.get_trial_resources().bundles == [{"CPU": 2.0, "GPU": 1.0}]
    named = context.TuneContext(_ctx(location, trial_name="lr=0.1"))
    assert named.get_trial_name() == "lr=0.1"


def test_object_storage_gives_a_local_scratch_folder() -> None:
    """Storage that is not the local disk: a scratch folder under the temporary folder,
    named after the experiment and the trial folder (documented as not uploaded)."""
    location = StorageLocation(pafs._MockFileSystem(), "bucket/sweeps/my_exp", "mock://x")
    trial_dir = context.TuneContext(_ctx(location)).get_trial_dir()
    expected = os.path.join(tempfile.gettempdir(), context.SCRATCH_DIR, "my_exp", "fn_abc_00001")
    assert trial_dir == expected
    assert os.path.isdir(trial_dir)


def test_activate_and_outside_a_trial(tmp_path: Path) -> None:
    """get_context() answers for the activated trial, and raises when none is."""
    location = StorageLocation.resolve(str(tmp_path))
    context.activate(_ctx(location))
    try:
        assert context.get_trial_id() == "abc_00001"
    finally:
        context.activate(None)
    with pytest.raises(RuntimeError, match="inside a trainable"):
        context.get_trial_name()
