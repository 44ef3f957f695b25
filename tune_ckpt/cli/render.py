"""Tables for the documents the ``cli/gather*`` modules report, drawn with rich.

Every cell is a :class:`rich.text.Text`, never a markup string: configs, metrics and error
messages hold square brackets that rich would otherwise read as markup.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tune_ckpt.metrics import lookup
from tune_ckpt.progress_table import STATUS_STYLE
from tune_ckpt.result import (
    AUTO_FILLED,
    GOODPUT,
    GOODPUT_FIELDS,
    NUM_FAILURES,
    NUM_PREEMPTIONS,
    TIME_CHECKPOINTING_S,
    TIME_LOST_S,
    TIME_WAITING_S,
)

Doc = dict[str, Any]

_BOOKKEEPING = frozenset(AUTO_FILLED) | {NUM_FAILURES, NUM_PREEMPTIONS} | frozenset(GOODPUT_FIELDS)
"""Result fields every trial has: left out of the compact metrics of a checkpoint."""


def make_console(file: TextIO | None = None) -> Console:
    """A console on stdout. Piped output gets a wide page (or ``COLUMNS``) rather than rich's
    80 columns, so rows stay whole for grep and scripts."""
    out = file or sys.stdout
    width = None
    if not out.isatty():
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else 200
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def _text(value: Any, style: str = "") -> Text:
    return Text("" if value is None else str(value), style=style)


_STATE_STYLE = {"running": "bold cyan", "interrupted": "yellow", "finished": "green"}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, "yellow"))


def _state(doc: Doc) -> str:
    """An experiment's state, with who holds its lease: ``running (host h, pid 1, ...)``."""
    state = doc.get("state") or ""
    lease = doc.get("lease")
    if not lease or not state:
        return state
    if lease["host"] is None:
        holder = f"marker of an earlier version, written {lease['heartbeat_age_s']:.0f} s ago"
    else:
        holder = (
            f"driver on {lease['host']}, pid {lease['pid']}, "
            f"heartbeat {lease['heartbeat_age_s']:.0f} s ago"
        )
    return f"{state} ({holder})"


def _number(value: Any) -> str:
    """A metric value for a table: floats to 6 significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _percent(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else ""


def _goodput(doc: Doc) -> str:
    """``97.1% (0.3 s lost to redone steps, 1.2 s checkpointing, 0.8 s waiting)``."""
    return (
        f"{_percent(doc.get(GOODPUT))} ({doc.get(TIME_LOST_S, 0.0):.1f} s lost to redone "
        f"steps, {doc.get(TIME_CHECKPOINTING_S, 0.0):.1f} s checkpointing, "
        f"{doc.get(TIME_WAITING_S, 0.0):.1f} s waiting to be rescheduled)"
    )


def human_size(size: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    amount, units = float(size) / 1024, ["KiB", "MiB", "GiB", "TiB"]
    while amount >= 1024 and len(units) > 1:
        amount /= 1024
        units.pop(0)
    return f"{amount:.1f} {units[0]}"


def _time(created: float | None) -> str:
    if not created:
        return ""
    return datetime.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M:%S")


def _counts(statuses: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in statuses.items()) or "no trials"


def _trials(count: int) -> str:
    return f"{count} trial" if count == 1 else f"{count} trials"


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``"a/b"`` keys (the names nested metrics go by)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _compact(metrics: dict[str, Any]) -> str:
    shown = {k: v for k, v in flatten(metrics).items() if k not in _BOOKKEEPING}
    return ", ".join(f"{k}={_number(v)}" for k, v in shown.items())


def _heading(console: Console, text: str) -> None:
    # Printed apart from the table: rich wraps a table's title to the table's width.
    console.print(Text(text, style="bold"))


def _fields() -> Table:
    """A two-column name/value table without borders."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _metric_header(doc: Doc) -> str:
    return f"best {doc['metric']} ({doc['mode']})" if doc.get("metric") else ""


# -- one renderer per document kind --------------------------------------------------------


def _experiments(doc: Doc, console: Console) -> None:
    _heading(console, f"Experiments in {doc['path']}")
    table = Table()
    table.add_column("experiment", no_wrap=True)
    table.add_column("trainable", no_wrap=True)
    table.add_column("trials", justify="right")
    table.add_column("statuses")
    table.add_column("state")
    table.add_column("created", no_wrap=True)
    for exp in doc["experiments"]:
        statuses = (
            _text(f"unreadable: {exp['error']}", "red")
            if exp["error"]
            else _text(_counts(exp["statuses"]))
        )
        table.add_row(
            _text(exp["name"]),
            _text(exp["trainable"]),
            _text(exp["num_trials"]),
            statuses,
            _text(_state(exp), _STATE_STYLE.get(exp.get("state") or "", "")),
            _text(_time(exp["created"])),
        )
    console.print(table)


def _experiment(doc: Doc, console: Console) -> None:
    _heading(console, f"Experiment {doc['path']}")
    console.print(
        Text(
            f"trainable {doc['trainable']}, created {_time(doc['created'])}; "
            f"{_state(doc)}; {_trials(len(doc['trials']))}: {_counts(doc['statuses'])}"
        )
    )
    sweep = doc["sweep_goodput"]
    console.print(Text(f"goodput {_goodput(sweep)} over {sweep['useful_s']:.1f} s step time"))
    table = Table()
    table.add_column("trial", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("iterations", justify="right")
    metric = _metric_header(doc)
    if metric:
        table.add_column(metric, justify="right")
    table.add_column("checkpoints", justify="right")
    table.add_column("size", justify="right")
    table.add_column("goodput", justify="right")
    for trial in doc["trials"]:
        cells = [_text(trial["trial_id"]), _status(trial["status"]), _text(trial["iterations"])]
        if metric:
            cells.append(_text(_number(trial["best_metric"])))
        cells += [_text(trial["num_checkpoints"]), _text(human_size(trial["checkpoint_bytes"]))]
        cells.append(_text(_percent(trial[GOODPUT])))
        table.add_row(*cells)
    console.print(table)


def _trial(doc: Doc, console: Console) -> None:
    _heading(console, f"Trial {doc['trial_id']}")
    about = _fields()
    about.add_row("folder", _text(doc["path"]))
    about.add_row("status", _status(doc["status"]))
    about.add_row("failures", _text(doc["num_failures"]))
    about.add_row("preemptions", _text(doc["num_preemptions"]))
    about.add_row("goodput", _text(_goodput(doc)))
    if doc["error"]:
        about.add_row("error", _text(doc["error"], "red"))
    console.print(about)

    _heading(console, "Config")
    config = _fields()
    for key, value in flatten(doc["config"]).items():
        config.add_row(key, _text(value))
    console.print(config)

    if doc["last_result"]:
        _heading(console, "Last result")
        last = _fields()
        for key, value in flatten(doc["last_result"]).items():
            last.add_row(key, _text(_number(value)))
        console.print(last)
    else:
        _heading(console, "Last result: none yet")

    if not doc["checkpoints"]:
        _heading(console, "Checkpoints: none on storage")
        return
    _heading(console, "Checkpoints")
    table = Table()
    table.add_column("checkpoint", no_wrap=True)
    table.add_column("iteration", justify="right")
    metric = doc.get("metric")
    if metric:
        table.add_column(metric, justify="right")
    table.add_column("metrics", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("verified", overflow="fold")
    for ckpt in doc["checkpoints"]:
        cells = [_text(ckpt["name"]), _text(ckpt["iteration"])]
        if metric:
            cells.append(_text(_number(lookup(ckpt["metrics"], metric))))
        verified = _check_cell(ckpt["status"], ckpt["problems"])
        cells += [_text(_compact(ckpt["metrics"])), _text(human_size(ckpt["size"])), verified]
        table.add_row(*cells)
    console.print(table)


def _check_cell(status: str, problems: list[str]) -> Text:
    if status == "ok":
        return Text("ok", style="green")
    if status == "unreadable":
        return Text("UNREADABLE: " + "; ".join(problems), style="yellow")
    return Text("BAD: " + "; ".join(problems), style="bold red")


def _verify(doc: Doc, console: Console) -> None:
    failed = [c for c in doc["checkpoints"] if not c["ok"]]
    if failed:
        _heading(console, "Checkpoints that fail verification or cannot be read")
        table = Table()
        table.add_column("checkpoint", no_wrap=True)
        table.add_column("problems", overflow="fold")
        for ckpt in failed:
            table.add_row(_text(ckpt["path"]), _check_cell(ckpt["status"], ckpt["problems"]))
        console.print(table)
    style = "bold red" if doc["bad"] else "yellow" if doc["unreadable"] else "green"
    summary = f"{doc['verified']} verified, {doc['bad']} bad"
    if doc["unreadable"]:
        summary += f", {doc['unreadable']} unreadable"
    console.print(Text(summary, style=style))


def _gc(doc: Doc, console: Console) -> None:
    dry = doc["dry_run"]
    rows = [("would remove" if dry else "removed", r["path"]) for r in doc["removed"]]
    rows += [
        ("would publish" if dry else "published", f"{p['from']} -> {p['to']}")
        for p in doc["published"]
    ]
    rows += [("would remove" if dry else "removed", m["path"]) for m in doc["markers"]]
    rows += [("kept: journal records it, manifest missing", k["path"]) for k in doc["kept"]]
    rows += [("running: gc refuses without --force", r["path"]) for r in doc["running"]]
    if rows:
        _heading(console, f"Leftovers in {doc['path']}")
        table = Table()
        table.add_column("action", no_wrap=True)
        table.add_column("path", overflow="fold")
        for action, path in rows:
            table.add_row(_text(action), _text(path))
        console.print(table)
    removed, published = len(doc["removed"]), len(doc["published"])
    marker_note = f", {len(doc['markers'])} driver lease(s)" if doc["markers"] else ""
    if dry:
        summary = f"dry run: would remove {removed}{marker_note}, publish {published}"
    else:
        summary = f"{removed} removed{marker_note}, {published} published"
    if doc["kept"]:
        summary += (
            f"; kept {len(doc['kept'])} committed checkpoint(s) whose manifest is missing "
            "(--force removes them)"
        )
    if doc["running"]:
        summary += f"; {len(doc['running'])} running: gc refuses without --force"
    console.print(Text(summary + ("; nothing changed" if dry else "")))


def _resume(doc: Doc, console: Console) -> None:
    _heading(console, f"Resumed {doc['path']}")
    table = _fields()
    table.add_row("trials", _text(f"{doc['num_trials']}: {_counts(doc['statuses'])}"))
    if doc["errored"]:
        table.add_row("errored", _text(", ".join(doc["errored"]), "bold red"))
    console.print(table)
    if doc["errored"]:
        # Without a flag, restore skips errored trials: say how to run them again.
        console.print(Text("errored trials run again with --resume-errored or --restart-errored"))


_RENDERERS: dict[str, Callable[[Doc, Console], None]] = {
    "experiments": _experiments,
    "experiment": _experiment,
    "trial": _trial,
    "verify": _verify,
    "gc": _gc,
    "resume": _resume,
}


def render(doc: Doc, console: Console | None = None) -> None:
    """Print a document of the ``cli/gather*`` modules as tables."""
    _RENDERERS[doc["kind"]](doc, console or make_console())
