"""params.json for people beside params.pkl, the exact config a restore uses."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from tune_ckpt.result_files import ResultFiles, read_params
from tune_ckpt.storage.location import StorageLocation


def test_params_written_both_ways_and_read_back_exactly(tmp_path: Path) -> None:
    config = {"shape": (3, 4), 7: np.float32(0.5), "w": np.arange(3, dtype=np.int16)}
    experiment = StorageLocation.resolve(str(tmp_path))
    ResultFiles(experiment, "trial_0").write_params(config)

    assert json.loads((tmp_path / "trial_0" / "params.json").read_bytes())["shape"] == [3, 4]
    back = read_params(experiment, "trial_0")
    assert back is not None
    assert back["shape"] == (3, 4)
    assert type(back[7]) is np.float32 and back[7] == np.float32(0.5)
    assert back["w"].dtype == np.int16 and back["w"].tolist() == [0, 1, 2]


def test_missing_or_damaged_params_pickle_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No params.pkl (an older experiment) or a damaged one: None, so the journal's JSON is
    used; damage is logged naming the file."""
    experiment = StorageLocation.resolve(str(tmp_path))
    assert read_params(experiment, "trial_0") is None
    (tmp_path / "trial_0").mkdir()
    (tmp_path / "trial_0" / "params.pkl").write_bytes(b"\x80\x05torn")
    with caplog.at_level(logging.WARNING, logger="tune_ckpt.result_files"):
        assert read_params(experiment, "trial_0") is None
    assert "params.pkl is damaged" in caplog.text
