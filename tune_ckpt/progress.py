"""What the driver shows while a sweep runs (``RunConfig.verbose``).

- ``0``: nothing of its own; warnings and errors still go through logging.
- ``1`` (default): on a terminal, a table of the trials redrawn in place; otherwise (CI logs,
  a pipe) plain lines when a trial starts, is restored or ends, and a status block every
  ``TUNE_CKPT_STATUS_INTERVAL_S`` seconds (default 30). A summary at the end either way.
- ``2``: as 1, plus a line for every result (nested metrics flattened: ``val/acc=0.93``)
  and every checkpoint.

When the sweep's first result lacks ``TuneConfig(metric=...)``, one warning says so at once,
naming the metrics the result has.

Failures and preemptions are warnings, logged through the ``tune_ckpt`` logger hierarchy at
every verbosity (the table counts them too). When the application configured no logging,
a handler on the ``tune_ckpt`` logger prints them for the length of the sweep, above the
table when there is one, instead of Python's bare last-resort output.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live

from tune_ckpt import result as keys
from tune_ckpt.config import seconds_from_env
from tune_ckpt.goodput import SweepGoodput, useful_seconds
from tune_ckpt.metrics import as_score, flatten, lookup
from tune_ckpt.progress_table import (
    ProgressTable,
    format_duration,
    format_value,
    latest_checkpoint_name,
    render_table,
    status_counts,
)
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)

STATUS_INTERVAL_ENV = "TUNE_CKPT_STATUS_INTERVAL_S"
DEFAULT_STATUS_INTERVAL_S = 30.0
PREFIX = "[tune_ckpt] "
_MAX_STATUS_LINES = 20
_MISSING = object()
_NOT_SHOWN = (
    frozenset(keys.AUTO_FILLED)
    | {keys.NUM_FAILURES, keys.NUM_PREEMPTIONS}
    | frozenset(keys.GOODPUT_FIELDS)
)


def status_interval_s() -> float:
    """Seconds between status blocks when output is not a terminal (from the environment)."""
    return seconds_from_env(STATUS_INTERVAL_ENV, DEFAULT_STATUS_INTERVAL_S)


def error_line(error: str | None, limit: int = 200) -> str:
    """The exception line of a traceback (its last non-blank line); a longer one is cut at
    the end of its first sentence (Ray's actor-death messages run to a paragraph), or at
    ``limit`` characters."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    line = lines[-1] if lines else "unknown error"
    if len(line) <= limit:
        return line
    end = line.find(". ", 20, limit)
    return line[: end + 1] + " ..." if end > 0 else line[: limit - 3] + "..."


def sweep_goodput(trials: Sequence[Trial]) -> SweepGoodput:
    """The sweep's goodput totals over ``trials``."""
    return SweepGoodput.of((t.goodput, useful_seconds(t.last_result)) for t in trials)


class _ConsoleLogHandler(logging.Handler):
    """Prints ``tune_ckpt`` log records through rich, so they land above a live table."""

    def __init__(self, console: Callable[[], Console]) -> None:
        super().__init__(logging.WARNING)
        self._console = console
        self.setFormatter(logging.Formatter(PREFIX + "%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._console().print(self.format(record), markup=False, highlight=False)
        except Exception:
            self.handleError(record)


class Progress:
    """The driver's display of a sweep; the runner reports events, this decides what shows.

    Args:
        verbose: 0, 1 or 2 (see the module docstring).
        metric, mode: the metric shown in the table and used to name the best trial.
        stream: where to write; standard output by default. A live table is drawn only when
            it is a terminal.
        interval_s: seconds between status blocks on a non-terminal stream; default from
            ``TUNE_CKPT_STATUS_INTERVAL_S`` or 30.
    """

    def __init__(
        self,
        verbose: int,
        metric: str | None = None,
        mode: str | None = None,
        stream: TextIO | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.verbose = verbose
        self.metric = metric
        self.mode = mode
        self._console = Console(file=stream, soft_wrap=True, highlight=False)
        self._errors = Console(stderr=True, soft_wrap=True, highlight=False)
        self._interval = interval_s if interval_s is not None else status_interval_s()
        self._trials: Sequence[Trial] = ()
        self._experiment: StorageLocation | None = None
        self._started = time.monotonic()
        self._live: Live | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._log_handler: _ConsoleLogHandler | None = None
        self._metric_checked = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, trials: Sequence[Trial], experiment: StorageLocation) -> None:
        """Begin showing ``trials`` (read at each redraw, never copied)."""
        self._trials = trials
        self._experiment = experiment
        self._started = time.monotonic()
        self._install_log_handler()
        if self.verbose == 0:
            return
        if self._console.is_terminal:
            self._live = Live(
                console=self._console,
                get_renderable=self.table,
                refresh_per_second=2,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._live.start()
        else:
            self._stopping.clear()
            self._ticker = threading.Thread(
                target=self._tick, name="tune_ckpt-progress", daemon=True
            )
            self._ticker.start()

    def stop(self) -> None:
        """Stop redrawing (the last table stays on screen) and remove the log handler."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._ticker is not None:
            self._stopping.set()
            self._ticker.join()
            self._ticker = None
        if self._log_handler is not None:
            logging.getLogger("tune_ckpt").removeHandler(self._log_handler)
            self._log_handler = None

    def _install_log_handler(self) -> None:
        package_logger = logging.getLogger("tune_ckpt")
        if package_logger.hasHandlers():
            return  # the application decides where logs go
        self._log_handler = _ConsoleLogHandler(
            lambda: self._console if self._live is not None else self._errors
        )
        package_logger.addHandler(self._log_handler)

    def table(self) -> ProgressTable:
        """The trials' current state as a table (what the live display draws)."""
        title = "tune_ckpt"
        if self._experiment is not None:
            title += f" · {paths.basename(self._experiment.uri()) or self._experiment.uri()}"
        return render_table(self._trials, self.metric, title, self._started)

    def _tick(self) -> None:
        while not self._stopping.wait(self._interval):
            self.status_block()

    def _line(self, text: str) -> None:
        self._console.print(PREFIX + text, markup=False, highlight=False)

    # -- events from the runner ------------------------------------------------------------

    def trial_started(self, trial: Trial, restored_from: str | None) -> None:
        if self.verbose == 0:
            return
        if restored_from:
            self._line(
                f"trial {trial.trial_id} restored from {restored_from} "
                f"(iteration {trial.iteration})"
            )
        elif self._live is None:
            self._line(f"trial {trial.trial_id} started with {trial.config}")

    def result(self, trial: Trial, result: dict[str, Any]) -> None:
        """A result arrived: checks the first one for the metric; at verbosity 2 a line
        with its metrics, nested ones flattened (``val/acc=0.93``)."""
        if not self._metric_checked:
            self._metric_checked = True
            self._check_metric(trial, result)
        if self.verbose >= 2:
            flat = flatten(result)
            shown = ", ".join(
                f"{k}={format_value(v)}"
                for k, v in flat.items()
                if (k not in _NOT_SHOWN or k == self.metric) and not isinstance(v, dict)
            )
            self._line(f"trial {trial.trial_id} iteration {trial.iteration}: {shown}")

    def _check_metric(self, trial: Trial, result: dict[str, Any]) -> None:
        """One warning, at once, when the sweep's first result lacks ``TuneConfig(metric)``
        (else the table's column stays blank and only ``get_best_result`` would say so)."""
        if not self.metric or lookup(result, self.metric, _MISSING) is not _MISSING:
            return
        reported = [k for k in flatten(result) if k not in _NOT_SHOWN]
        logger.warning(
            "TuneConfig(metric=%r) is not in the first result of the sweep (trial %s), "
            "which has %s; nested metrics are named with '/', e.g. 'val/acc'",
            self.metric,
            trial.trial_id,
            ", ".join(repr(k) for k in reported) or "no metrics of its own",
        )

    def checkpoint(self, trial: Trial, uri: str) -> None:
        if self.verbose >= 2:
            self._line(f"trial {trial.trial_id} checkpoint {uri}")

    def failed(self, trial: Trial, error: str, retrying: bool, has_checkpoint: bool = True) -> None:
        if retrying:
            restart = (
                "restarting from its latest checkpoint"
                if has_checkpoint
                else "restarting from scratch: no checkpoint yet"
            )
            logger.warning(
                "trial %s failed (%d so far), %s: %s",
                trial.trial_id,
                trial.num_failures,
                restart,
                error_line(error),
            )
        else:
            logger.error(
                "trial %s failed after %d failures: %s",
                trial.trial_id,
                trial.num_failures,
                error_line(error),
            )

    def preempted(self, trial: Trial) -> None:
        logger.warning(
            "trial %s preempted at iteration %d, rescheduling from its latest checkpoint",
            trial.trial_id,
            trial.iteration,
        )

    def finished(self, trial: Trial) -> None:
        if self.verbose == 0 or self._live is not None:
            return
        metric = self._metric_text(trial)
        checkpoint = latest_checkpoint_name(trial)
        self._line(
            f"trial {trial.trial_id} {trial.status.value} at iteration {trial.iteration}"
            f"{metric}" + (f", latest checkpoint {checkpoint}" if checkpoint else "")
        )

    def _metric_text(self, trial: Trial) -> str:
        """`` val_acc=0.93``, or nothing without a metric."""
        if not self.metric:
            return ""
        return f" {self.metric}={format_value(lookup(trial.last_result, self.metric))}"

    # -- periodic and final output ---------------------------------------------------------

    def status_block(self) -> None:
        """One line of counts, then one per running trial (at most 20)."""
        trials = list(self._trials)
        elapsed = format_duration(time.monotonic() - self._started)
        self._line(f"{elapsed} · {status_counts(trials)}")
        running = [t for t in trials if t.status == TrialStatus.RUNNING]
        for trial in running[:_MAX_STATUS_LINES]:
            metric = self._metric_text(trial)
            checkpoint = latest_checkpoint_name(trial) or "none"
            self._line(
                f"  trial {trial.trial_id} iteration {trial.iteration}{metric} "
                f"checkpoint {checkpoint} failures {trial.num_failures} "
                f"preemptions {trial.num_preemptions}"
            )
        if len(running) > _MAX_STATUS_LINES:
            self._line(f"  and {len(running) - _MAX_STATUS_LINES} more running")

    def best_trial(self) -> Trial | None:
        """The trial with the best ``metric`` by ``mode``; None without both."""
        if not self.metric or not self.mode:
            return None
        scored = []
        for trial in self._trials:
            score = as_score(lookup(trial.last_result, self.metric))
            if score is not None:
                scored.append((score, trial))
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        return pick(scored, key=lambda pair: pair[0])[1]

    def summary(self) -> None:
        """The end of the sweep: counts, goodput, the best trial and its checkpoint, the
        errors."""
        if self.verbose == 0:
            return
        trials = list(self._trials)
        where = self._experiment.uri() if self._experiment else ""
        elapsed = format_duration(time.monotonic() - self._started)
        self._line(
            f"{len(trials)} trials in {elapsed}: {status_counts(trials)}; results in {where}"
        )
        self._line(sweep_goodput(trials).describe())
        best = self.best_trial()
        if best is not None and self.metric:
            value = format_value(lookup(best.last_result, self.metric))
            self._line(
                f"best trial {best.trial_id}: {self.metric}={value} ({self.mode}) "
                f"at iteration {best.iteration}, config {best.config}"
            )
            latest = best.latest_checkpoint
            if latest is not None and self._experiment is not None:
                self._line(f"best trial's latest checkpoint: {self._experiment.uri(latest.path)}")
        errored = [t for t in trials if t.status == TrialStatus.ERROR]
        for trial in errored:
            self._line(
                f"trial {trial.trial_id} errored after {trial.num_failures} failures: "
                f"{error_line(trial.error)}"
            )
