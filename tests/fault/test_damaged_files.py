"""Files damaged on storage: each restores from the right place, with a warning, never a
traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

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
    assert sum("damaged journal line(s)" in w and "line 7 of" in w for w in warned) == 1
    rows = (trial / "progress.csv").read_text().splitlines()
    assert len(rows) == 8 and all(len(r.split(",")) == len(rows[0].split(",")) for r in rows)
    for line in journal.read_text().splitlines()[len(lines) + 1 :]:
        json.loads(line)


def _unfinished(journal: Path, lines: list[dict[str, Any]]) -> None:
    lines[-1]["status"] = "RUNNING"
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.parametrize("transfer", ["auto", "object_store"])
@pytest.mark.parametrize("damaged", [".tune_ckpt_manifest.json", ".metadata.json"])
def test_damaged_manifest_or_metadata_makes_that_checkpoint_bad(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, transfer: str, damaged: str
) -> None:
    """The newest checkpoint's manifest (or its metadata) no longer parses: it is skipped
    as bad with a warning in the driver's log, on the worker's path and on the driver's
    (object store), and the trial resumes from the one before, its history continuous."""
    done, journal, lines = finished_experiment(tmp_path, transfer)
    _unfinished(journal, lines)
    (Path(done.path) / "checkpoint_000006" / damaged).write_bytes(b'{"files": [')

    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        (resumed,) = tune.Tuner.restore(str(journal.parent), Accumulator).fit()
    assert resumed.error is None
    assert resumed.metrics["restored_from"] == 4
    assert resumed.metrics["num_failures"] == 0
    assert resumed.metrics["total"] == expected_total(6)
    assert result_iterations(resumed.path) == list(range(1, 7))
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert skipped and "checkpoint_000006" in skipped[0] and "does not parse" in skipped[0]
