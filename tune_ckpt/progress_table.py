"""The progress table: one row per trial, built fresh from the trials' state at each redraw.

Rendering is separate from :mod:`tune_ckpt.progress` (which decides when to draw), so the
table can be rendered at any width in tests and by the CLI's callers alike.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from tune_ckpt import result as keys
from tune_ckpt.metrics import lookup
from tune_ckpt.storage import paths
from tune_ckpt.trial import Trial, TrialStatus

MAX_ROWS = 20
"""Rows shown at most; the rest are counted in the caption. Running trials come first."""

_ORDER = {
    TrialStatus.RUNNING: 0,
    TrialStatus.ERROR: 1,
    TrialStatus.PENDING: 2,
    TrialStatus.PAUSED: 3,
}
STATUS_STYLE = {
    TrialStatus.RUNNING.value: "bold cyan",
    TrialStatus.PENDING.value: "yellow",
    TrialStatus.PAUSED.value: "magenta",
    TrialStatus.TERMINATED.value: "green",
    TrialStatus.ERROR.value: "bold red",
}
"""How a status is coloured, in the live table and in the CLI's tables alike."""


def format_value(value: Any) -> str:
    """A metric as a short string: floats to 4 significant digits, missing as ''."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_duration(seconds: float) -> str:
    """``h:mm:ss``; seconds under a minute as ``12.3s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def status_counts(trials: Sequence[Trial]) -> str:
    """``2 RUNNING, 1 PENDING``: the statuses present, in a fixed order."""
    counts = Counter(t.status for t in trials)
    return ", ".join(f"{counts[s]} {s.value}" for s in TrialStatus if counts[s])


def latest_checkpoint_name(trial: Trial) -> str:
    latest = trial.latest_checkpoint
    return paths.basename(latest.path) if latest else ""


def config_summary(config: dict[str, Any]) -> str:
    """``lr=0.1, layers=2``: the scalar entries of a trial's config."""
    return ", ".join(
        f"{k}={format_value(v)}" for k, v in config.items() if isinstance(v, int | float | str)
    )


_KEEP_ORDER = ("trial", "status", "iter", "metric", "checkpoint", "time", "fail", "preempt")
"""Columns by how long they stay as the terminal narrows; ``config`` goes first."""
_RIGHT = frozenset({"iter", "metric", "fail", "preempt", "time"})


class ProgressTable:
    """A renderable table of trials that fits the width it is drawn at: it drops the least
    needed columns (config first, then preemptions, failures, ...) rather than cutting the
    trial ids or wrapping rows."""

    def __init__(
        self,
        trials: Sequence[Trial],
        metric: str | None,
        title: str,
        started: float,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self._trials = list(trials)
        self._metric = metric
        self._title = title
        self._started = started
        self._max_rows = max_rows

    def _rows(self, shown: list[Trial]) -> list[dict[str, str]]:
        rows = []
        for trial in shown:
            total = trial.last_result.get(keys.TIME_TOTAL_S)
            rows.append(
                {
                    "trial": trial.trial_id,
                    "status": trial.status.value,
                    "iter": str(trial.iteration),
                    "metric": format_value(lookup(trial.last_result, self._metric))
                    if self._metric
                    else "",
                    "checkpoint": latest_checkpoint_name(trial),
                    "fail": str(trial.num_failures or ""),
                    "preempt": str(trial.num_preemptions or ""),
                    "time": format_duration(float(total)) if isinstance(total, int | float) else "",
                    "config": config_summary(trial.config),
                }
            )
        return rows

    def _shown(self) -> list[Trial]:
        return sorted(self._trials, key=lambda t: _ORDER.get(t.status, 4))[: self._max_rows]

    def _header(self, name: str) -> str:
        return self._metric if name == "metric" and self._metric else name

    def _min_widths(self, rows: list[dict[str, str]]) -> dict[str, int]:
        """Each column's natural width; the config alone may be cut (to 12 at least)."""
        widths = {}
        for name in _DISPLAY_ORDER:
            natural = max([len(self._header(name))] + [len(row[name]) for row in rows])
            widths[name] = min(natural, 12) if name == "config" else natural
        return widths

    def build(self, columns: Sequence[str], config_width: int | None = None) -> Table:
        """The table with only ``columns`` (names from ``_DISPLAY_ORDER``), the config
        cut to ``config_width`` characters when given."""
        shown = self._shown()
        elapsed = format_duration(time.monotonic() - self._started)
        table = Table(
            title=f"{self._title} · {elapsed} · {status_counts(self._trials)}",
            title_justify="left",
        )
        rows = self._rows(shown)
        widths = self._min_widths(rows)
        for name in columns:
            table.add_column(
                self._header(name),
                justify="right" if name in _RIGHT else "left",
                no_wrap=True,
                overflow="ellipsis",
                min_width=widths[name],
                max_width=config_width if name == "config" else None,
            )
        for trial, row in zip(shown, rows, strict=True):
            cells: list[str | Text] = [row[name] for name in columns]
            if "status" in columns:
                index = list(columns).index("status")
                cells[index] = Text(row["status"], style=STATUS_STYLE[trial.status.value])
            table.add_row(*cells)
        shown_ids = {id(t) for t in shown}
        hidden = [t for t in self._trials if id(t) not in shown_ids]
        if hidden:
            table.caption = f"and {len(hidden)} more: {status_counts(hidden)}"
            table.caption_justify = "left"
        return table

    def layout(self, max_width: int) -> tuple[list[str], int | None]:
        """The most columns that fit ``max_width`` at their minimum widths, and the width
        left for the config."""
        widths = self._min_widths(self._rows(self._shown()))
        wanted = [c for c in _KEEP_ORDER if c != "metric" or self._metric] + ["config"]
        for keep in range(len(wanted), 3, -1):
            chosen = [c for c in _DISPLAY_ORDER if c in wanted[:keep]]
            # One space of padding each side of a cell, and a border around each column.
            needed = sum(widths[c] for c in chosen) + 3 * len(chosen) + 1
            if needed <= max_width:
                config_width = widths["config"] + max_width - needed if "config" in chosen else None
                return chosen, config_width
        return [c for c in _DISPLAY_ORDER if c in wanted[:3]], None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(*self.layout(options.max_width))


_DISPLAY_ORDER = (
    "trial",
    "status",
    "iter",
    "metric",
    "checkpoint",
    "fail",
    "preempt",
    "time",
    "config",
)


def render_table(
    trials: Sequence[Trial],
    metric: str | None,
    title: str,
    started: float,
    max_rows: int = MAX_ROWS,
) -> ProgressTable:
    """The table for the trials' current state; ``started`` is the sweep's
    ``time.monotonic()`` start, for the elapsed time in the title."""
    return ProgressTable(trials, metric, title, started, max_rows)
