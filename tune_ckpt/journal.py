"""The experiment journal: what the driver knows, appended to storage as it happens.

The journal holds one JSON object per line: a header (``"kind": "experiment"``) naming the
trainable and the settings, then trial snapshots (``"kind": "trial"``), the last snapshot of
each trial winning. Only relative paths are written. Checkpoints committed after the last
snapshot are still found: on restore, storage wins over the journal.

On local disk (and NFS) the journal is one file, ``experiment_journal.jsonl``, appended to.
Object stores cannot append, and rewriting one growing object on every flush would cost
quadratic traffic, so there each flush is a new numbered segment under ``journal/``. Entries
are read file first, then segments in order; an experiment that has segments keeps writing
segments wherever it moves.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from tune_ckpt.errors import ExperimentError
from tune_ckpt.metrics import jsonable
from tune_ckpt.storage import paths
from tune_ckpt.storage.lines import cut_torn_tail, parse_json_lines
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial

logger = logging.getLogger(__name__)

JOURNAL_FILE = "experiment_journal.jsonl"
SEGMENTS_DIR = "journal"
FORMAT_VERSION = 1


def _segments(experiment: StorageLocation) -> list[str]:
    names = [paths.basename(i.path) for i in experiment.list_dir(SEGMENTS_DIR)]
    return [paths.join(SEGMENTS_DIR, n) for n in sorted(names) if n.endswith(".jsonl")]


def exists(experiment: StorageLocation) -> bool:
    """Whether ``experiment`` holds a journal (in either form)."""
    return experiment.is_file(JOURNAL_FILE) or bool(_segments(experiment))


class Journal:
    """Appends experiment and trial snapshots; buffered between :meth:`flush` calls."""

    def __init__(self, experiment: StorageLocation) -> None:
        self._experiment = experiment
        self._pending: list[str] = []
        self._next_segment: int | None = None  # -1: append to the single file
        self._first_append = True

    def write_header(self, trainable_name: str, extra: dict[str, Any]) -> None:
        header = {
            "kind": "experiment",
            "format": FORMAT_VERSION,
            "trainable": trainable_name,
            "created": time.time(),
            **jsonable(extra),
        }
        self._pending.append(json.dumps(header, sort_keys=True))
        self.flush()

    def record(self, trial: Trial) -> None:
        """Queue a snapshot of ``trial``."""
        snapshot = {"kind": "trial", **jsonable(trial.to_json())}
        self._pending.append(json.dumps(snapshot, sort_keys=True))

    def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(line + "\n" for line in self._pending).encode()
        self._pending = []
        if self._next_segment is None:
            # Once an experiment has segments (it lived on an object store) it keeps them,
            # so the order of its entries stays file first, then segments.
            existing = _segments(self._experiment)
            if self._experiment.is_local and not existing:
                self._next_segment = -1
            else:
                self._next_segment = int(paths.basename(existing[-1])[:8]) + 1 if existing else 0
        if self._next_segment < 0:
            if self._first_append:
                # A driver killed mid-append may have torn the last line; the first line
                # this one appends must not be glued to it.
                cut_torn_tail(self._experiment, JOURNAL_FILE)
                self._first_append = False
            self._experiment.append_bytes(JOURNAL_FILE, data)
            return
        name = paths.join(SEGMENTS_DIR, f"{self._next_segment:08d}.jsonl")
        self._next_segment += 1
        self._experiment.write_bytes(name, data)


def _entries(experiment: StorageLocation) -> tuple[list[dict[str, Any]], list[str]]:
    """The journal's entries, and where a damaged line was skipped."""
    entries: list[dict[str, Any]] = []
    damaged: list[str] = []
    # Both forms, so an experiment copied between local disk and an object store restores.
    sources = [JOURNAL_FILE] if experiment.is_file(JOURNAL_FILE) else []
    for source in sources + _segments(experiment):
        skipped: list[int] = []
        data = experiment.read_bytes(source)
        entries.extend(parse_json_lines(data, experiment.uri(source), skipped))
        damaged.extend(f"line {n} of {experiment.uri(source)}" for n in skipped)
    return entries, damaged


def load(experiment: StorageLocation) -> tuple[dict[str, Any], dict[str, Trial]]:
    """The header and the latest snapshot of every trial. A torn or damaged line (a driver
    killed mid-write) is skipped with a warning."""
    if not exists(experiment):
        raise ExperimentError(
            f"{experiment.uri()} holds no tune_ckpt experiment ({JOURNAL_FILE} not found)"
        )
    entries, damaged = _entries(experiment)
    header: dict[str, Any] | None = None
    trials: dict[str, Trial] = {}
    for entry in entries:
        if entry.get("kind") == "experiment" and header is None:
            header = entry
        elif entry.get("kind") == "trial":
            try:
                trial = Trial.from_json(entry)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("%s: skipping a damaged trial entry: %r", experiment.uri(), exc)
                continue
            trials[trial.trial_id] = trial
    if header is None:
        detail = f" ({damaged[0]} does not parse)" if damaged else ""
        raise ExperimentError(
            f"{experiment.uri()} has a journal without an experiment header{detail}"
        )
    if damaged:
        logger.warning(
            "skipping %d damaged journal line(s), torn by an interrupted write? First: %s",
            len(damaged),
            damaged[0],
        )
    return header, trials
