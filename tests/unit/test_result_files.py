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


def _iterations(tmp_path: Path) -> list[int]:
    text = (tmp_path / "trial_0" / "result.json").read_text()
    return [json.loads(line)["training_iteration"] for line in text.splitlines()]


def test_a_roll_back_keeps_the_rows_before_an_exploit_that_moved_the_iteration_back(
    tmp_path: Path,
) -> None:
    """A PBT exploiter at iteration 5 took a donor's checkpoint of iteration 3, ran to 6,
    then failed and restores its checkpoint of iteration 4: its own rows 1-5 stay, the
    rows after the exploit above 4 go, queued ones included."""
    experiment = StorageLocation.resolve(str(tmp_path))
    files = ResultFiles(experiment, "trial_0")
    for iteration in range(1, 6):
        files.add({"training_iteration": iteration})
    floor = files.rows()
    assert floor == 5
    for iteration in (4, 5):
        files.add({"training_iteration": iteration})
    files.flush()
    files.add({"training_iteration": 6})  # queued, not written

    files.truncate_after(4, floor)
    files.flush()
    assert _iterations(tmp_path) == [1, 2, 3, 4, 5, 4]
    csv_rows = (tmp_path / "trial_0" / "progress.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 6  # the header and the rows kept

    files.truncate_after(0)  # starting over: everything goes
    assert not (tmp_path / "trial_0" / "result.json").read_text()


def test_roll_back_uses_the_trials_history_floor(tmp_path: Path) -> None:
    """The driver's roll-back keeps an exploiter's rows before its exploit; a start over
    (no checkpoint verifies) drops them too and resets the floor."""
    from tune_ckpt.driver.bookkeeping import CheckpointBook
    from tune_ckpt.records import CheckpointRecord
    from tune_ckpt.trial import Trial

    experiment = StorageLocation.resolve(str(tmp_path))
    files = ResultFiles(experiment, "trial_0")
    for iteration in (1, 2, 3, 4, 5, 3, 4, 5):
        files.add({"training_iteration": iteration})
    files.flush()
    record = CheckpointRecord(path="donor/checkpoint_000002", iteration=2)
    trial = Trial(trial_id="t", config={}, trial_dir="trial_0", checkpoints=[record])
    trial.history_floor = 5
    CheckpointBook.roll_back(trial, files, 2)
    assert _iterations(tmp_path) == [1, 2, 3, 4, 5]
    CheckpointBook.roll_back(trial, files, 0)
    assert trial.history_floor == 0 and _iterations(tmp_path) == []
    assert Trial.from_json(trial.to_json()).history_floor == 0
    trial.history_floor = 7
    assert Trial.from_json(trial.to_json()).history_floor == 7
