"""The driver's checkpoint bookkeeping: recording what a worker saved (committing what came
through the object store), retention, the journal entries that name checkpoints, the
candidates a restore tries, and rolling a trial back to the checkpoint it restored.

Order matters and lives here once: a checkpoint's results reach storage, then the journal
entry naming the checkpoint, then what retention drops is deleted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from tune_ckpt import result as keys
from tune_ckpt.config import CheckpointConfig
from tune_ckpt.journal import Journal
from tune_ckpt.persistence import ObjectStoreFallback, RestoreCandidate, SavedCheckpoint
from tune_ckpt.progress import Progress
from tune_ckpt.records import CheckpointRecord
from tune_ckpt.references import live_references
from tune_ckpt.result_files import ResultFiles
from tune_ckpt.retention import plan_retention, unreferenced, warn_unscored_once
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.deleter import BackgroundDeleter
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trainable import TrainableState
from tune_ckpt.trial import Trial

logger = logging.getLogger(__name__)


class CheckpointBook:
    """Checkpoint records of every trial of one sweep, kept in step with storage."""

    def __init__(
        self,
        experiment: StorageLocation,
        config: CheckpointConfig,
        journal: Journal,
        progress: Progress,
        on_journal: Callable[[], None] | None = None,
        trials: list[Trial] | None = None,
    ) -> None:
        self.experiment = experiment
        self.store = CheckpointStore(experiment)
        self._trials = trials if trials is not None else []
        """Every trial of the sweep: a checkpoint any of them refers to is never deleted."""
        self.deleter = BackgroundDeleter(self.store, self.referenced)
        self._config = config
        self._journal = journal
        self._progress = progress
        self._on_journal = on_journal  # state kept beside the journal (a scheduler's)
        self._warned_unscored: set[str] = set()
        self._warned_fallback_nodes: set[str] = set()
        self._batched = 0  # nesting depth of batch()
        self._released: list[CheckpointRecord] = []  # dropped inside it, deleted after it

    def record_saved(self, trial: Trial, files: ResultFiles, saved: SavedCheckpoint) -> None:
        """A worker took a checkpoint: commit it if it came packed, record it, journal it and
        hand what retention drops to the background deleter."""
        if saved.fallback is not None:
            self._warn_fallback_once(saved.fallback)
        if saved.packed is not None:
            committed = self.store.commit_packed(
                saved.path, saved.packed, saved.iteration, saved.results
            )
            digest = committed.manifest_digest
        else:
            digest = saved.manifest_digest
        metrics = dict(trial.last_result)
        metrics[keys.TIME_TOTAL_S] = saved.state.time_total_s
        record = CheckpointRecord(saved.path, saved.iteration, metrics, digest, time.time())
        trial.checkpoints = [r for r in trial.checkpoints if r.path != record.path] + [record]
        plan = plan_retention(trial.checkpoints, self._config)
        warn_unscored_once(plan, self._config, self._warned_unscored)
        files.flush()
        trial.checkpoints = sorted(plan.keep, key=lambda r: (r.iteration, r.committed_at))
        self.journal(trial)
        self.release(plan.delete)
        self._progress.checkpoint(trial, self.experiment.uri(record.path))

    def referenced(self, path: str) -> bool:
        """Whether a live record of any trial (or a pending exploit) refers to ``path``."""
        return path in live_references(self._trials)

    def release(self, dropped: Iterable[CheckpointRecord]) -> None:
        """Records no longer kept by their trial: delete the checkpoints no other live
        record refers to (in the background)."""
        if self._batched:
            self._released.extend(dropped)  # deleted after the batch's journal flush
            return
        for record in unreferenced(dropped, live_references(self._trials)):
            self.deleter.delete(record.path)

    def journal(self, trial: Trial) -> None:
        self._journal.record(trial)
        if not self._batched:
            self._flush()

    def _flush(self) -> None:
        self._journal.flush()
        if self._on_journal is not None:
            self._on_journal()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Journal entries made inside reach storage in one flush at the end, and the
        states beside the journal are saved once after it: what one decision changed in
        several trials is journaled all or nothing. Deletions asked for inside follow that
        flush (what the journal names is deleted only once it no longer does)."""
        self._batched += 1
        try:
            yield
        finally:
            self._batched -= 1
            if not self._batched:
                self._flush()
                released, self._released = self._released, []
                self.release(released)

    def _warn_fallback_once(self, fallback: ObjectStoreFallback) -> None:
        """One WARNING per node whose workers cannot write the storage themselves."""
        if fallback.node_id not in self._warned_fallback_nodes:
            self._warned_fallback_nodes.add(fallback.node_id)
            logger.warning("%s", fallback.message(self.experiment.uri()))

    @staticmethod
    def candidates(trial: Trial) -> list[RestoreCandidate]:
        """The trial's checkpoints, newest first, as a restore tries them."""
        records = sorted(trial.checkpoints, key=lambda r: (r.iteration, r.committed_at))
        return [
            RestoreCandidate(
                r.path,
                r.manifest_digest,
                TrainableState(r.iteration, float(r.metrics.get(keys.TIME_TOTAL_S, 0.0))),
            )
            for r in reversed(records)
        ]

    @staticmethod
    def roll_back(trial: Trial, files: ResultFiles, iteration: int) -> None:
        """The trial restored the checkpoint of ``iteration`` (0: none verified, it starts
        over): records and results after it go, so the history stays one continuous line."""
        trial.checkpoints = [r for r in trial.checkpoints if r.iteration <= iteration]
        if iteration == 0:
            trial.history_floor = 0  # it starts over: its whole history goes
        files.truncate_after(iteration, trial.history_floor)
        kept = [r for r in trial.checkpoints if r.iteration == iteration]
        trial.last_result = dict(kept[-1].metrics) if kept else {}

    def prepare_start(self, trial: Trial) -> None:
        """Before a trial's actor first runs: nothing of the trial writes yet, so what
        interrupted writes left behind can be swept. A folder the deleter is removing must
        not be swept at the same time."""
        self.deleter.wait()
        self.store.sweep(trial.trial_dir)
