"""Per-trial result files: ``params.json``, ``params.pkl``, ``result.json`` (one JSON object
per line) and ``progress.csv``.

``params.json`` is the config for people; ``params.pkl`` is the exact config (cloudpickle, as
Ray Tune keeps it), so a restored trial gets tuples, numpy values and non-string keys back
as they were.

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
from tune_ckpt.storage.lines import cut_torn_tail, read_json_lines
from tune_ckpt.storage.location import StorageLocation

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.json"
PARAMS_PICKLE = "params.pkl"
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
        self._tails_checked = False  # a driver killed mid-append may have torn the last line

    def _rel(self, name: str) -> str:
        return paths.join(self._trial_dir, name)

    def write_params(self, config: dict[str, Any], pickled: bytes | None = None) -> None:
        """Write ``params.json`` and ``params.pkl``; ``pickled`` is the config already
        pickled with :func:`pickle_config`, when the caller has it."""
        data = json.dumps(jsonable(config), indent=2, sort_keys=True).encode()
        self._experiment.write_bytes(self._rel(PARAMS_FILE), data)
        blob = pickled if pickled is not None else pickle_config(config)
        self._experiment.write_bytes(self._rel(PARAMS_PICKLE), blob)

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
        if not self._tails_checked:
            cut_torn_tail(self._experiment, self._rel(RESULT_FILE))
            cut_torn_tail(self._experiment, self._rel(PROGRESS_FILE))
            self._tails_checked = True
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in pending)
        self._experiment.append_bytes(self._rel(RESULT_FILE), lines.encode())
        self._experiment.append_bytes(self._rel(PROGRESS_FILE), self._csv(pending))

    def _csv(self, results: list[dict[str, Any]]) -> bytes:
        flat = [_flatten(r) for r in results]
        out = io.StringIO()
        header = self._columns is None
        if self._columns is None:
            head = b""
            if self._experiment.exists(self._rel(PROGRESS_FILE)):
                head = self._experiment.read_bytes(self._rel(PROGRESS_FILE)).split(b"\n", 1)[0]
            if head.strip():
                self._columns = next(csv.reader([head.decode()]))
                header = False
            else:
                self._columns = list(dict.fromkeys(k for row in flat for k in row))
        writer = csv.DictWriter(out, fieldnames=self._columns, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(flat)
        return out.getvalue().encode()

    def rows(self) -> int:
        """How many results ``result.json`` holds, queued ones written first."""
        self.flush()
        if not self._experiment.exists(self._rel(RESULT_FILE)):
            return 0
        return len(read_json_lines(self._experiment, self._rel(RESULT_FILE)))

    def truncate_after(self, iteration: int, floor: int = 0) -> None:
        """Drop results after ``iteration`` (a trial rolled back to a checkpoint), so the
        files hold one continuous history; the first ``floor`` rows stay whatever their
        iteration (a PBT exploiter's own results before its iteration jumped back)."""

        def keep(rows: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
            return [
                r
                for index, r in enumerate(rows, start)
                if index < floor or int(r.get("training_iteration", 0)) <= iteration
            ]

        exists = self._experiment.exists(self._rel(RESULT_FILE))
        written = read_json_lines(self._experiment, self._rel(RESULT_FILE)) if exists else []
        self._pending = keep(self._pending, len(written))
        if not exists:
            return
        kept = keep(written, 0)
        self._tails_checked = True  # both files are rewritten whole below
        self._experiment.write_bytes(
            self._rel(RESULT_FILE),
            "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode(),
        )
        self._experiment.delete_file(self._rel(PROGRESS_FILE))
        self._columns = None
        if kept:
            self._experiment.write_bytes(self._rel(PROGRESS_FILE), self._csv(kept))


def pickle_config(config: dict[str, Any]) -> bytes:
    """``config`` as ``params.pkl`` holds it."""
    from ray import cloudpickle  # imported here: loading this module must not start Ray

    return bytes(cloudpickle.dumps(config))


def read_params(experiment: StorageLocation, trial_dir: str) -> dict[str, Any] | None:
    """The exact config from a trial's ``params.pkl``; None when the trial has none (written
    by an older version) or it does not unpickle (damaged: logged, the journal's JSON is then
    used). A storage error propagates: unreadable now is not damaged."""
    rel = paths.join(trial_dir, PARAMS_PICKLE)
    if not experiment.exists(rel):
        return None
    data = experiment.read_bytes(rel)
    from ray import cloudpickle

    try:
        config = cloudpickle.loads(data)
    except Exception as exc:  # any unpickling failure means the file is damaged
        logger.warning(
            "%s is damaged (%s: %s); using the config from the journal",
            experiment.uri(rel),
            type(exc).__name__,
            exc,
        )
        return None
    if not isinstance(config, dict):
        logger.warning(
            "%s holds no config dict; using the config from the journal", experiment.uri(rel)
        )
        return None
    return config


def read_results(experiment: StorageLocation, trial_dir: str) -> list[dict[str, Any]]:
    """All results in a trial's ``result.json``."""
    return read_json_lines(experiment, paths.join(trial_dir, RESULT_FILE))
