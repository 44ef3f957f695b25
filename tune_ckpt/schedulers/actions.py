"""What a scheduler asks the driver to do to trials other than by its decision.

The driver reads these with ``TrialScheduler.pop_actions()`` after every hook call and
carries them out in order. They name trials by ``trial_id`` so they can be journaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tune_ckpt.records import CheckpointRecord


@dataclass(frozen=True)
class StopTrial:
    """End ``trial_id`` (TERMINATED) and free its resources.

    Used for trials that are not the one reporting, e.g. PAUSED trials HyperBand dropped
    in a halving. A trial whose pause checkpoint is still being saved is stopped once the
    save has finished or failed. The driver then calls ``on_trial_remove`` for it.
    """

    trial_id: str


@dataclass(frozen=True)
class SaveCheckpoint:
    """Commit a checkpoint of ``trial_id`` at the result just reported (PBT asks this of
    the upper quantile so others can exploit it). Results after this one must not be in it:
    the driver saves before the trial's next step."""

    trial_id: str


@dataclass(frozen=True)
class Exploit:
    """PBT: restart ``trial_id`` from ``donor_id``'s checkpoint with ``new_config``.

    Attributes:
        trial_id: the exploiting trial (lower quantile).
        donor_id: the trial cloned (upper quantile).
        new_config: the donor's config after explore; becomes the trial's config.
        donor_checkpoint: the donor's checkpoint record to restore (path and manifest
            digest), or None: the donor has no checkpoint at or after its last perturbation
            point yet. The driver then uses the donor's next committed checkpoint (one it
            was asked for with :class:`SaveCheckpoint` may be in flight) or asks the donor
            for one first, and applies the exploit once it is committed.
        pause: True when the trial must wait (PAUSED) before it resumes from the donor's
            checkpoint, because other trials are waiting for resources or PBT is
            synchronous. False: it may restore in place and go on at once.
        operations: hyperparameter -> what explore did (``"* 1.2"``, ``"resample"``,
            ``"shift left"``), for the log.
        policy: the ``pbt_global.txt`` / ``pbt_policy_<trial>.txt`` record (see
            ``tune_ckpt.schedulers.pbt_log``).
    """

    trial_id: str
    donor_id: str
    new_config: dict[str, Any]
    donor_checkpoint: CheckpointRecord | None
    pause: bool
    operations: dict[str, Any] = field(default_factory=dict)
    policy: list[Any] = field(default_factory=list)


SchedulerAction = StopTrial | SaveCheckpoint | Exploit
"""Any action a scheduler may queue."""
