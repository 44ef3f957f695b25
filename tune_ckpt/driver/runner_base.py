"""What the driver loop's parts share: the trials holding actors (``Slot``), the calls in
flight (``Call``), and ``RunnerBase``, the state and steps that ``loop.TrialRunner``
provides and its handlers (``loop_drains``, ``loop_scheduling``) use."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt.config import TuneConfig
from tune_ckpt.driver.actors import ActorPool
from tune_ckpt.driver.bookkeeping import CheckpointBook
from tune_ckpt.driver.drain_watch import DrainWatch
from tune_ckpt.driver.emergency import SaveCostTracker
from tune_ckpt.driver.evacuation import Evacuation
from tune_ckpt.driver.events import TrialEvents
from tune_ckpt.driver.node_watch import NodeWatch
from tune_ckpt.driver.placement import Placement
from tune_ckpt.driver.scheduling import Scheduling
from tune_ckpt.driver.trial_source import TrialSource
from tune_ckpt.journal import Journal
from tune_ckpt.persistence import SavedCheckpoint
from tune_ckpt.progress import Progress
from tune_ckpt.records import ExploitReference
from tune_ckpt.result_files import ResultFiles
from tune_ckpt.schedulers import Exploit, SchedulerAction
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus


@dataclass
class Slot:
    """A trial that holds an actor."""

    trial: Trial
    actor: Any
    resources: dict[str, float]
    files: ResultFiles
    answered: bool = False  # the actor has completed a call, so it did start
    node_id: str = ""
    saved_at: float = field(default_factory=time.monotonic)  # its last checkpoint, or start
    stop_after_pause: bool = False  # a scheduler stopped it while its pause save ran
    launched_for: ExploitReference | None = None  # the exploit its actor got the config of


@dataclass
class Call:
    slot: Slot
    # "train" | "save" | "save_end" | "pause" | "probe" | "restore" | "reset" | "evacuate"
    # | "node" (a new actor's node) | "exploit"
    kind: str


class RunnerBase:
    """The loop's state, and the steps of its core that the handlers call."""

    _slots: dict[str, Slot]
    _inflight: dict[Any, Call]
    _pending: collections.deque[Trial]
    _placement: Placement
    _actors: ActorPool
    _book: CheckpointBook
    _progress: Progress
    _sched: Scheduling
    _source: TrialSource
    _evacuation: Evacuation
    _drain_watch: DrainWatch
    _node_watch: NodeWatch
    _save_costs: SaveCostTracker
    _events: TrialEvents
    _experiment: StorageLocation
    _tune_config: TuneConfig
    _journal: Journal
    _abort: BaseException | None
    _owners: dict[str, str]  # trial id -> the owner token of its current actor

    def _end(self, slot: Slot) -> None:
        raise NotImplementedError

    def _on_saved(self, slot: Slot, saved: SavedCheckpoint | None) -> None:
        raise NotImplementedError

    def _on_preempted(self, slot: Slot) -> None:
        raise NotImplementedError

    def _vacate(self, slot: Slot, end_actor: Callable[[Any], None]) -> None:
        raise NotImplementedError

    def _release(self, slot: Slot, refresh: bool) -> None:
        raise NotImplementedError

    def _conclude(
        self, trial: Trial, status: TrialStatus, hook: Callable[[Trial], list[SchedulerAction]]
    ) -> None:
        raise NotImplementedError

    def _train(self, slot: Slot) -> None:
        raise NotImplementedError

    def _pause(self, slot: Slot) -> None:
        raise NotImplementedError

    def _on_failure(self, slot: Slot, exc: BaseException) -> None:
        raise NotImplementedError

    def _apply_exploit(self, action: Exploit) -> None:
        raise NotImplementedError

    def _apply(self, actions: list[SchedulerAction]) -> None:
        raise NotImplementedError

    def _restore_exploit(self, slot: Slot) -> bool:
        raise NotImplementedError

    def _release_exploits(self, slot: Slot, finished: bool) -> None:
        raise NotImplementedError

    def _start_evacuation_saves(self) -> None:
        raise NotImplementedError
