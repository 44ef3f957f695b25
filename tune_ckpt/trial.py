"""Trial: one configuration's run, its status and its committed checkpoints.

State is plain JSON (``to_json``/``from_json``), relative paths only, so an experiment can be
journaled, moved and restored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt.goodput import Goodput
from tune_ckpt.records import AwaitedExploit, CheckpointRecord, ExploitReference


class TrialStatus(str, enum.Enum):
    """Where a trial is in its life."""

    PENDING = "PENDING"  # waiting for resources (first start or restart after a failure)
    RUNNING = "RUNNING"  # its actor is training
    PAUSED = "PAUSED"  # a scheduler paused it: checkpointed, resources given back, resumable
    TERMINATED = "TERMINATED"  # finished: stopped by a criterion or the trainable
    ERROR = "ERROR"  # failed past its failure budget


_TRANSITIONS: dict[TrialStatus, frozenset[TrialStatus]] = {
    TrialStatus.PENDING: frozenset({TrialStatus.RUNNING, TrialStatus.TERMINATED}),
    TrialStatus.RUNNING: frozenset(
        {TrialStatus.PENDING, TrialStatus.PAUSED, TrialStatus.TERMINATED, TrialStatus.ERROR}
    ),
    # A paused trial resumes at once (RUNNING), waits for resources (PENDING), is stopped
    # by its scheduler (TERMINATED) or fails while its pause checkpoint is saved (ERROR).
    TrialStatus.PAUSED: frozenset(
        {TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.TERMINATED, TrialStatus.ERROR}
    ),
    TrialStatus.TERMINATED: frozenset({TrialStatus.PENDING}),
    TrialStatus.ERROR: frozenset({TrialStatus.PENDING}),
}
"""Legal moves. Finished trials go back to PENDING only when an experiment is restored."""


class IllegalTransition(RuntimeError):
    """A status change the transition table does not allow (a runner bug)."""


@dataclass
class Trial:
    """One trial of an experiment.

    Attributes:
        trial_id: unique within the experiment.
        config: the resolved configuration.
        trial_dir: the trial's folder relative to the experiment root.
        status: see :class:`TrialStatus`.
        last_result: the latest reported result.
        checkpoints: committed checkpoints still on storage, oldest first.
        num_failures: failures counted against ``max_failures``.
        num_preemptions: preemptions (not counted against ``max_failures``).
        error: the traceback of the failure that ended the trial, if any.
        trial_name: its name (``TuneConfig(trial_name_creator=...)``); empty for the
            default, the name of its folder (see :attr:`name`).
        trainable_name: the trainable's name (Ray Tune's ``Trial.trainable_name``).
        experiment_tag: its index and sampled values, ``"3_lr=0.01,layers=2"`` (Ray
            Tune's ``Trial.experiment_tag``).
        goodput: seconds lost to redone steps, spent checkpointing and waiting to run
            again (see :mod:`tune_ckpt.goodput`).
        exploit: a PBT exploit under way: the donor's checkpoint it restores and its
            new config (see :class:`ExploitReference`); None otherwise.
        awaiting: a PBT exploit waiting for its donor's checkpoint (see
            :class:`AwaitedExploit`); None otherwise.
        history_floor: the rows of ``result.json`` a roll-back to a checkpoint keeps
            whatever their iteration: those before an exploit that moved the iteration
            back to the donor's (its own history goes on, untruncated).
    """

    trial_id: str
    config: dict[str, Any]
    trial_dir: str
    status: TrialStatus = TrialStatus.PENDING
    last_result: dict[str, Any] = field(default_factory=dict)
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    num_failures: int = 0
    num_preemptions: int = 0
    error: str | None = None
    trial_name: str = ""
    trainable_name: str = ""
    experiment_tag: str = ""
    goodput: Goodput = field(default_factory=Goodput)
    exploit: ExploitReference | None = None
    awaiting: AwaitedExploit | None = None
    history_floor: int = 0
    # Where the driver keeps files about the trial (callbacks' and loggers'); not state.
    _local_path: str | None = field(default=None, init=False, repr=False, compare=False)
    _uri: str | None = field(default=None, init=False, repr=False, compare=False)

    def __str__(self) -> str:
        return self.name  # as Ray Tune's Trial: its name

    def set_status(self, status: TrialStatus) -> None:
        if status == self.status:
            return
        if status not in _TRANSITIONS[self.status]:
            raise IllegalTransition(f"trial {self.trial_id}: {self.status.value} -> {status.value}")
        self.status = status

    @property
    def name(self) -> str:
        """The trial's name: the one given, else its folder's."""
        return self.trial_name or self.trial_dir.rstrip("/").rsplit("/", 1)[-1]

    def set_paths(self, local_path: str, uri: str) -> None:
        """Set by the driver (``driver/events``) before a callback first sees the trial."""
        self._local_path, self._uri = local_path, uri

    @property
    def local_path(self) -> str | None:
        """Ray Tune's ``Trial.local_path``: a local folder for files about the trial (the
        loggers'): the trial folder on local storage, else a folder on the driver's disk
        whose files are uploaded to the trial folder when the trial ends. None until a
        sweep with callbacks runs the trial."""
        return self._local_path

    @property
    def logdir(self) -> str | None:
        """The older name of :attr:`local_path`."""
        return self._local_path

    @property
    def path(self) -> str | None:
        """The trial folder on the experiment's storage, as a path or URI (Ray Tune's
        ``Trial.path``); None until a sweep with callbacks runs the trial."""
        return self._uri

    @property
    def is_finished(self) -> bool:
        return self.status in (TrialStatus.TERMINATED, TrialStatus.ERROR)

    @property
    def iteration(self) -> int:
        return int(self.last_result.get("training_iteration", 0))

    @property
    def latest_checkpoint(self) -> CheckpointRecord | None:
        if not self.checkpoints:
            return None
        return max(self.checkpoints, key=lambda r: (r.iteration, r.committed_at))

    def to_json(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "config": self.config,
            "trial_dir": self.trial_dir,
            "status": self.status.value,
            "last_result": self.last_result,
            "checkpoints": [r.to_json() for r in self.checkpoints],
            "num_failures": self.num_failures,
            "num_preemptions": self.num_preemptions,
            "error": self.error,
            "trial_name": self.trial_name,
            "trainable_name": self.trainable_name,
            "experiment_tag": self.experiment_tag,
            "goodput": self.goodput.to_json(),
            "exploit": self.exploit.to_json() if self.exploit else None,
            "awaiting": self.awaiting.to_json() if self.awaiting else None,
            "history_floor": self.history_floor,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        return cls(
            trial_id=data["trial_id"],
            config=data["config"],
            trial_dir=data["trial_dir"],
            status=TrialStatus(data["status"]),
            last_result=dict(data.get("last_result") or {}),
            checkpoints=[CheckpointRecord.from_json(r) for r in data.get("checkpoints", [])],
            num_failures=int(data.get("num_failures", 0)),
            num_preemptions=int(data.get("num_preemptions", 0)),
            error=data.get("error"),
            trial_name=str(data.get("trial_name") or ""),
            trainable_name=str(data.get("trainable_name") or ""),
            experiment_tag=str(data.get("experiment_tag") or ""),
            goodput=Goodput.from_json(data.get("goodput")),
            exploit=ExploitReference.from_json(data["exploit"]) if data.get("exploit") else None,
            awaiting=AwaitedExploit.from_json(data["awaiting"]) if data.get("awaiting") else None,
            history_floor=int(data.get("history_floor", 0)),
        )
