"""The progress display without Ray: table rendering at terminal widths, the live display,
the log handler and the helpers."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from tune_ckpt.progress import STATUS_INTERVAL_ENV, Progress, error_line, status_interval_s
from tune_ckpt.progress_table import MAX_ROWS, render_table
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus


class TerminalBuffer(io.StringIO):
    """A text buffer that says it is a terminal, as a tty would."""

    def isatty(self) -> bool:
        return True


def make_trials(n: int) -> list[Trial]:
    trials = []
    for i in range(n):
        trial = Trial(f"abcde_{i:05d}", {"lr": 0.1 * (i + 1), "name": "x" * 40}, f"T_{i}")
        trial.status = [TrialStatus.RUNNING, TrialStatus.TERMINATED, TrialStatus.PENDING][i % 3]
        trial.last_result = {
            "training_iteration": i,
            "val/acc": 0.5 + i / 1000,
            "time_total_s": 75.0,
        }
        trial.checkpoints = [CheckpointRecord(f"T_{i}/checkpoint_{i:06d}", i, {}, None, 1.0)]
        trial.num_failures = i % 2
        trials.append(trial)
    return trials


def render(width: int, trials: list[Trial], metric: str | None = "val/acc") -> str:
    console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)
    console.print(render_table(trials, metric, "tune_ckpt · exp", started=0.0))
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [50, 80, 120, 240])
def test_table_fits_the_terminal_width(width: int) -> None:
    """At any width the whole table fits (its right border is drawn, nothing is cropped),
    trial ids and statuses are complete, and columns are dropped rather than squeezed."""
    trials = make_trials(4)
    text = render(width, trials)
    lines = text.splitlines()
    assert all(cell_len(line) <= width for line in lines), text
    assert lines[-1].startswith("└") and lines[-1].endswith("┘"), text
    for trial in trials:
        assert trial.trial_id in text and trial.status.value in text
    assert ("config" in text) == (width >= 120)
    assert ("checkpoint_000003" in text) == (width >= 80)


def test_table_rows_show_the_trial_state() -> None:
    """A row holds status, iteration, the nested metric, the checkpoint folder, failures,
    the training time and the config."""
    (trial,) = make_trials(1)
    text = render(200, [trial])
    row = next(line for line in text.splitlines() if trial.trial_id in line)
    for cell in ("RUNNING", "0.5", "checkpoint_000000", "1:15", "lr=0.1"):
        assert cell in row, row
    assert "val/acc" not in render(200, [trial], metric=None)


def test_table_shows_running_first_and_counts_the_rest() -> None:
    """Beyond MAX_ROWS the running trials are shown and the others counted in the caption."""
    trials = make_trials(MAX_ROWS + 10)
    text = render(200, trials)
    shown = [t for t in trials if t.trial_id in text]
    assert len(shown) == MAX_ROWS
    running = [t for t in trials if t.status == TrialStatus.RUNNING]
    assert all(t in shown for t in running)
    assert "and 10 more:" in text


def test_live_table_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the table is redrawn in place (cursor movement), starts are not
    printed as lines, restores are, and the final table stays."""
    stream = TerminalBuffer()
    trials = make_trials(2)
    progress = Progress(1, "val/acc", "max", stream=stream)
    progress.start(trials, StorageLocation.resolve(str(tmp_path / "my_exp")))
    progress.trial_started(trials[0], None)
    progress.trial_started(trials[1], "/somewhere/checkpoint_000001")
    trials[0].last_result = {**trials[0].last_result, "training_iteration": 42}
    progress.stop()
    progress.summary()
    out = stream.getvalue()
    assert "\x1b[" in out  # drawn with terminal control codes
    assert "started with" not in out
    assert f"trial {trials[1].trial_id} restored from /somewhere/checkpoint_000001" in out
    assert "my_exp" in out
    final_table = out[out.rindex("┏") :]
    assert "42" in final_table
    assert f"best trial {trials[1].trial_id}: val/acc=0.501 (max)" in out
    # Two trials of 75 s of steps each, nothing lost, saved or waited for.
    assert "goodput 100.0% of 150.0 s step time: 0.0 s lost to redone steps" in out


def test_warnings_print_through_a_handler_when_logging_is_unconfigured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With no logging configured, tune_ckpt warnings print with a prefix to stderr during
    the sweep (verbose=0 included), and the handler is removed afterwards."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    package_logger = logging.getLogger("tune_ckpt")
    before = list(package_logger.handlers)
    progress = Progress(0, stream=io.StringIO())
    progress.start(make_trials(1), StorageLocation.resolve(str(tmp_path)))
    (trial,) = make_trials(1)
    trial.num_failures = 1
    progress.failed(trial, "Traceback (most recent call last):\n  x\nValueError: bad lr\n", True)
    progress.stop()
    assert package_logger.handlers == before
    err = capsys.readouterr().err
    assert f"[tune_ckpt] WARNING trial {trial.trial_id} failed (1 so far)" in err
    assert err.rstrip().endswith("ValueError: bad lr")


def test_an_application_handler_is_left_to_decide(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """When logging is configured (pytest's handler here), no handler is added."""
    package_logger = logging.getLogger("tune_ckpt")
    before = list(package_logger.handlers)
    progress = Progress(1, stream=io.StringIO())
    progress.start([], StorageLocation.resolve(str(tmp_path)))
    assert package_logger.handlers == before
    progress.stop()


def test_status_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interval comes from TUNE_CKPT_STATUS_INTERVAL_S; a bad value names the variable."""
    monkeypatch.delenv(STATUS_INTERVAL_ENV, raising=False)
    assert status_interval_s() == 30.0
    monkeypatch.setenv(STATUS_INTERVAL_ENV, "2.5")
    assert status_interval_s() == 2.5
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv(STATUS_INTERVAL_ENV, bad)
        with pytest.raises(ValueError, match=f"{STATUS_INTERVAL_ENV}='{bad}'.*seconds > 0"):
            status_interval_s()


def test_error_line_is_the_exception_line() -> None:
    """The exception line of a traceback, shortened; a placeholder for nothing."""
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'lr'\n\n"
    assert error_line(tb) == "KeyError: 'lr'"
    assert error_line(None) == "unknown error"
    long = error_line("E" * 500)
    assert len(long) == 200 and long.endswith("...")
    ray_style = "The actor is dead because its worker process has died. Worker exit type: " + (
        "SYSTEM_ERROR " * 30
    )
    assert error_line(ray_style) == "The actor is dead because its worker process has died. ..."


def test_best_trial_follows_mode() -> None:
    """The best trial is by metric and mode; without a mode there is none."""
    trials = make_trials(3)
    for mode, expected in (("max", 2), ("min", 0)):
        progress = Progress(1, "val/acc", mode, stream=io.StringIO())
        progress._trials = trials
        assert progress.best_trial() is trials[expected]
    progress = Progress(1, "val/acc", None, stream=io.StringIO())
    progress._trials = trials
    assert progress.best_trial() is None


@pytest.mark.parametrize(
    ("has_checkpoint", "says"),
    [
        (True, "restarting from its latest checkpoint"),
        (False, "restarting from scratch: no checkpoint yet"),
    ],
)
def test_a_failure_says_where_the_trial_restarts(
    caplog: pytest.LogCaptureFixture, has_checkpoint: bool, says: str
) -> None:
    """The retry message promises a checkpoint only when the trial has one."""
    (trial,) = make_trials(1)
    trial.num_failures = 1
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        Progress(0, stream=io.StringIO()).failed(trial, "ValueError: x", True, has_checkpoint)
    (record,) = caplog.records
    assert says in record.getMessage()


def test_verbose_2_prints_nested_metrics_flattened_with_the_metric() -> None:
    """A result line names nested metrics by their '/' paths, the TuneConfig metric
    included even when it is a field tune_ckpt fills in."""
    stream = io.StringIO()
    progress = Progress(2, metric="val/acc", mode="max", stream=stream)
    (trial,) = make_trials(1)
    progress.result(
        trial, {"loss": 0.5, "val": {"acc": 0.93, "extra": {"f1": 0.8}}, "time_total_s": 3.0}
    )
    line = stream.getvalue()
    assert "loss=0.5, val/acc=0.93, val/extra/f1=0.8" in line
    assert "time_total_s" not in line
    stream.truncate(0)
    by_iteration = Progress(2, metric="training_iteration", stream=stream)
    by_iteration.result(trial, {"training_iteration": 4, "loss": 0.5})
    assert "training_iteration=4" in stream.getvalue()


def test_one_warning_when_the_first_result_lacks_the_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Naming the metric and the keys the result has, once, at any verbosity."""
    progress = Progress(0, metric="val/acc", mode="max", stream=io.StringIO())
    first, second = make_trials(2)
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        progress.result(first, {"val": {"accuracy": 0.9}, "loss": 1.0, "time_total_s": 1.0})
        progress.result(second, {"val": {"accuracy": 0.9}, "loss": 1.0})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "TuneConfig(metric='val/acc') is not in the first result of the sweep (trial "
        f"{first.trial_id}), which has 'val/accuracy', 'loss'; nested metrics are named with "
        "'/', e.g. 'val/acc'"
    ]


@pytest.mark.parametrize(
    ("metric", "result"),
    [(None, {"loss": 1.0}), ("val/acc", {"val": {"acc": 0.9}}), ("val/acc", {"val/acc": None})],
)
def test_no_warning_when_the_metric_is_there_or_unset(
    caplog: pytest.LogCaptureFixture, metric: str | None, result: dict
) -> None:
    progress = Progress(0, metric=metric, stream=io.StringIO())
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        progress.result(make_trials(1)[0], result)
    assert not caplog.records
