"""Files damaged on storage: each restores from the right place, with a warning, never a
traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import tune_ckpt as tune

from ._experiment import finished_experiment, result_iterations
from ._trainables import Accumulator, expected_total

pytestmark = pytest.mark.usefixtures("local_ray")


def test_torn_last_lines_of_results_and_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver killed mid-append tore the last line of result.json, progress.csv and the
    journal. Tuner.restore skips them with a warning each, resumes from checkpoint 6, and
    the files it appends to afterwards hold whole lines only."""
    done, journal, lines = finished_experiment(tmp_path)
    lines[-1]["status"] = "RUNNING"
    torn_entry = json.dumps(lines[-1])[:40]
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines) + torn_entry)
    trial = Path(done.path)
    with open(trial / "result.json", "a") as f:
        f.write('{"training_iteration": 7, "tot')
    with open(trial / "progress.csv", "a") as f:
        f.write("7,0.")  # rewritten from result.json when the trial rolls back to 6

    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        (resumed,) = tune.Tuner.restore(str(journal.parent), Accumulator).fit()
    assert resumed.error is None
    assert resumed.metrics["restored_from"] == 6
    assert resumed.metrics["total"] == expected_total(7)
    assert result_iterations(resumed.path) == list(range(1, 8))
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("result.json: skipping line 7" in w for w in warned) == 1
    assert sum("experiment_journal.jsonl: skipping line" in w for w in warned) == 1
    rows = (trial / "progress.csv").read_text().splitlines()
    assert len(rows) == 8 and all(len(r.split(",")) == len(rows[0].split(",")) for r in rows)
    for line in journal.read_text().splitlines()[len(lines) + 1 :]:
        json.loads(line)
