"""Per-trial result files: ``params.json``, ``result.json`` (one JSON object per line) and
``progress.csv``.

Results are buffered and flushed when a checkpoint is committed, when the trial ends and at
most every ``flush_interval`` seconds, so a sweep does not pay one storage write per result
(on object stores every flush rewrites the object). Everything up to each committed checkpoint
is on storage before that checkpoint is recorded.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from typing import Any

from tune_ckpt.metrics import jsonable
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.csv"


def _flatten(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


class ResultFiles:
    """Writes one trial's result files under the experiment root."""

    def __init__(
        self, experiment: StorageLocation, trial_dir: str, flush_interval: float = 5.0
    ) -> None:
        self._experiment = experiment
        self._trial_dir = trial_dir
        self._flush_interval = flush_interval
        self._pending: list[dict[str, Any]] = []
        self._columns: list[str] | None = None
        self._last_flush = time.monotonic()

    def _rel(self, name: str) -> str:
        return paths.join(self._trial_dir, name)

    def write_params(self, config: dict[str, Any]) -> None:
        data = json.dumps(jsonable(config), indent=2, sort_keys=True).encode()
        self._experiment.write_bytes(self._rel(PARAMS_FILE), data)

    def add(self, result: dict[str, Any]) -> None:
        """Queue a result; flushes when the interval has passed."""
        self._pending.append(jsonable(result))
        if time.monotonic() - self._last_flush >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write all queued results."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in pending)
        self._experiment.append_bytes(self._rel(RESULT_FILE), lines.encode())
        self._experiment.append_bytes(self._rel(PROGRESS_FILE), self._csv(pending))

    def _csv(self, results: list[dict[str, Any]]) -> bytes:
        flat = [_flatten(r) for r in results]
        out = io.StringIO()
        header = self._columns is None
        if self._columns is None:
            if self._experiment.exists(self._rel(PROGRESS_FILE)):
                head = self._experiment.read_bytes(self._rel(PROGRESS_FILE)).split(b"\n", 1)[0]
                self._columns = next(csv.reader([head.decode()]))
                header = False
            else:
                self._columns = list(dict.fromkeys(k for row in flat for k in row))
        writer = csv.DictWriter(out, fieldnames=self._columns, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(flat)
        return out.getvalue().encode()

    def truncate_after(self, iteration: int) -> None:
        """Drop results after ``iteration`` (a trial rolled back to a checkpoint), so the
        files hold one continuous history."""
        self._pending = [
            r for r in self._pending if int(r.get("training_iteration", 0)) <= iteration
        ]
        if not self._experiment.exists(self._rel(RESULT_FILE)):
            return
        kept = []
        for line in self._experiment.read_bytes(self._rel(RESULT_FILE)).splitlines():
            if line.strip() and int(json.loads(line).get("training_iteration", 0)) <= iteration:
                kept.append(json.loads(line))
        self._experiment.write_bytes(
            self._rel(RESULT_FILE),
            "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode(),
        )
        self._experiment.delete_file(self._rel(PROGRESS_FILE))
        self._columns = None
        if kept:
            self._experiment.write_bytes(self._rel(PROGRESS_FILE), self._csv(kept))


def read_results(experiment: StorageLocation, trial_dir: str) -> list[dict[str, Any]]:
    """All results in a trial's ``result.json``; a torn or unparsable line (a driver killed
    mid-append) is skipped with a warning naming the file and line."""
    rel = paths.join(trial_dir, RESULT_FILE)
    if not experiment.exists(rel):
        return []
    results = []
    for number, line in enumerate(experiment.read_bytes(rel).splitlines(), 1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except ValueError:
            result = None
        if not isinstance(result, dict):
            logger.warning("skipping unparsable line %d of %s", number, experiment.uri(rel))
            continue
        results.append(result)
    return results
