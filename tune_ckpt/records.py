"""CheckpointRecord: what the experiment remembers about one committed checkpoint;
``ExploitReference`` and ``AwaitedExploit``: a PBT exploit under way, journaled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt.storage.paths import check_relative


@dataclass(frozen=True)
class CheckpointRecord:
    """One committed checkpoint of one trial.

    Attributes:
        path: location relative to the experiment root, e.g. ``"trial_x/checkpoint_000010"``.
        iteration: the trial's ``training_iteration`` when the checkpoint was taken.
        metrics: the result reported with (or just before) the checkpoint.
        manifest_digest: hash of the manifest bytes, so a replaced manifest is noticed.
        committed_at: wall-clock time of the commit.
    """

    path: str
    iteration: int
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)
    manifest_digest: str = ""
    committed_at: float = 0.0

    def __post_init__(self) -> None:
        check_relative(self.path)

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form (relative paths only) for the journal."""
        return {
            "path": self.path,
            "iteration": self.iteration,
            "metrics": self.metrics,
            "manifest_digest": self.manifest_digest,
            "committed_at": self.committed_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckpointRecord:
        return cls(
            path=data["path"],
            iteration=int(data["iteration"]),
            metrics=dict(data.get("metrics") or {}),
            manifest_digest=str(data.get("manifest_digest", "")),
            committed_at=float(data.get("committed_at", 0.0)),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, default=repr)


@dataclass(frozen=True)
class ExploitReference:
    """PBT: a trial about to restore another trial's checkpoint (no bytes are copied).

    Journaled on the exploiting trial before it restarts, so a driver that dies in the
    middle of an exploit is resumed by carrying it out, and so the checkpoint stays alive
    (retention, ``gc`` and the deleter keep any checkpoint a live record refers to).

    Attributes:
        donor_id: the trial cloned.
        checkpoint: the donor's committed checkpoint (path relative to the experiment
            root, manifest digest, iteration): restored exactly, verified by digest.
        config: the explored config the trial runs with once the checkpoint is loaded.
    """

    donor_id: str
    checkpoint: CheckpointRecord
    config: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "donor_id": self.donor_id,
            "checkpoint": self.checkpoint.to_json(),
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExploitReference:
        return cls(
            donor_id=str(data["donor_id"]),
            checkpoint=CheckpointRecord.from_json(data["checkpoint"]),
            config=dict(data["config"]),
        )


@dataclass(frozen=True)
class AwaitedExploit:
    """PBT: an exploit decided while its donor had no checkpoint at its perturbation point.

    Journaled on the exploiting trial with the decision, so a driver that dies before the
    donor's checkpoint is committed keeps it: ``Tuner.restore`` gives it the donor's first
    kept checkpoint at or after ``iteration`` (see ``references.resolve_awaited``).

    Attributes:
        donor_id: the trial cloned.
        iteration: the donor's iteration at the decision.
        config: the explored config the trial runs with once the checkpoint is loaded.
    """

    donor_id: str
    iteration: int
    config: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"donor_id": self.donor_id, "iteration": self.iteration, "config": self.config}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AwaitedExploit:
        return cls(str(data["donor_id"]), int(data["iteration"]), dict(data["config"]))
