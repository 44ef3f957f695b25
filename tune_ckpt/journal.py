"""The experiment journal: what the driver knows, appended to storage as it happens.

``experiment_journal.jsonl`` holds one JSON object per line: a header (``"kind":
"experiment"``) naming the trainable, then trial snapshots (``"kind": "trial"``), the last
snapshot of each trial winning. Only relative paths are written. Checkpoints committed after
the last snapshot are still found: on restore, storage wins over the journal.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tune_ckpt.errors import ExperimentError
from tune_ckpt.result_files import jsonable
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial

JOURNAL_FILE = "experiment_journal.jsonl"
FORMAT_VERSION = 1


class Journal:
    """Appends experiment and trial snapshots; buffered between :meth:`flush` calls."""

    def __init__(self, experiment: StorageLocation) -> None:
        self._experiment = experiment
        self._pending: list[str] = []

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
        self._experiment.append_bytes(JOURNAL_FILE, data)


def load(experiment: StorageLocation) -> tuple[dict[str, Any], dict[str, Trial]]:
    """The header and the latest snapshot of every trial. A torn last line (a driver killed
    mid-write) is ignored."""
    if not experiment.is_file(JOURNAL_FILE):
        raise ExperimentError(
            f"{experiment.uri()} holds no tune_ckpt experiment ({JOURNAL_FILE} not found)"
        )
    header: dict[str, Any] | None = None
    trials: dict[str, Trial] = {}
    for line in experiment.read_bytes(JOURNAL_FILE).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("kind") == "experiment" and header is None:
            header = entry
        elif entry.get("kind") == "trial":
            trial = Trial.from_json(entry)
            trials[trial.trial_id] = trial
    if header is None:
        raise ExperimentError(f"{experiment.uri()}/{JOURNAL_FILE} has no experiment header")
    return header, trials
