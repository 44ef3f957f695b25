"""Line files a killed driver may leave torn: tolerant reading, and a tail cut before appends."""

from __future__ import annotations

import logging

import pytest

from tune_ckpt.journal import Journal
from tune_ckpt.journal import load as load_journal
from tune_ckpt.result_files import ResultFiles, read_results
from tune_ckpt.storage.lines import cut_torn_tail, read_json_lines

from .conftest import Backend


def test_torn_and_damaged_lines_are_skipped_with_one_warning(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Lines that are not JSON objects are skipped; one warning names the file and line."""
    backend.put("t/result.json", b'{"i": 1}\n[1, 2]\n{"i": 2}\nnot json\n{"i": 3')
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        entries = read_json_lines(backend.location, "t/result.json")
    assert entries == [{"i": 1}, {"i": 2}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "result.json: skipping line 2 (and 2 more)" in warnings[0]


def test_cut_torn_tail_keeps_whole_lines_only(backend: Backend) -> None:
    """A last line without its newline goes; complete files are left as they are."""
    backend.put("a.jsonl", b'{"i": 1}\n{"i": 2}\n{"i"')
    backend.put("b.jsonl", b'{"i": 1}\n')
    cut_torn_tail(backend.location, "a.jsonl")
    cut_torn_tail(backend.location, "b.jsonl")
    cut_torn_tail(backend.location, "missing.jsonl")
    assert backend.get("a.jsonl") == b'{"i": 1}\n{"i": 2}\n'
    assert backend.get("b.jsonl") == b'{"i": 1}\n'
    assert not backend.location.exists("missing.jsonl")


def test_results_appended_after_a_torn_line_stay_readable(backend: Backend) -> None:
    """A driver killed mid-append left half a result line; the next driver's results are
    not glued to it, and progress.csv keeps its header and whole rows."""
    first = ResultFiles(backend.location, "t")
    first.add({"training_iteration": 1, "x": 1.0})
    first.flush()
    backend.put("t/result.json", backend.get("t/result.json") + b'{"training_iter')
    backend.put("t/progress.csv", backend.get("t/progress.csv") + b"2,0.")

    second = ResultFiles(backend.location, "t")
    second.add({"training_iteration": 2, "x": 2.0})
    second.flush()
    assert [r["training_iteration"] for r in read_results(backend.location, "t")] == [1, 2]
    rows = backend.get("t/progress.csv").decode().splitlines()
    assert rows[0].split(",") == ["training_iteration", "x"]
    assert rows[1:] == ["1,1.0", "2,2.0"]


def test_progress_csv_torn_inside_its_header_gets_a_new_one(local: Backend) -> None:
    """Nothing but a torn header: the next flush writes the header again."""
    local.put("t/progress.csv", b"training_itera")
    files = ResultFiles(local.location, "t")
    files.add({"training_iteration": 1})
    files.flush()
    assert local.get("t/progress.csv").decode().splitlines() == ["training_iteration", "1"]


def test_journal_appends_after_a_torn_entry(local: Backend) -> None:
    """The single-file journal on local disk: an entry appended after a torn one is read."""
    from tune_ckpt.trial import Trial

    journal = Journal(local.location)
    journal.write_header("fn", {})
    local.put(
        "experiment_journal.jsonl",
        local.get("experiment_journal.jsonl") + b'{"kind": "trial", "trial_id": "x',
    )
    resumed = Journal(local.location)
    resumed.record(Trial("t1", {"a": 1}, "fn_t1"))
    resumed.flush()
    header, trials = load_journal(local.location)
    assert header["trainable"] == "fn"
    assert list(trials) == ["t1"]
