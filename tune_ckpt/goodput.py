"""Goodput: how much of a trial's time went into steps that count.

Three costs of faults and of guarding against them, per trial, in seconds:

- **lost**: steps later redone. When a trial rolls back to a checkpoint (after a failure, a
  lost node or a preemption without a save), the ``time_this_iter_s`` of every recorded
  step after that checkpoint is lost: the difference of the two ``time_total_s``.
- **checkpointing**: saves, as the worker timed them (writing, committing or packing),
  plus the driver's commit of a checkpoint that came through the object store.
- **waiting**: from the failure or preemption until the trial steps again (rescheduling,
  a new worker process, the restore).

Useful time is the trial's ``time_total_s``: the step time of the line of results that
counts (a restore sets it back to the checkpoint's). ``goodput = useful / (useful + lost +
checkpointing + waiting)``. Time outside steps that no fault caused (the round trips
between steps) is in none of them, so goodput measures what faults and checkpoints cost,
not the driver's overhead. A driver restart (``Tuner.restore``) keeps the totals, which
the trial's JSON state carries; the time the sweep was down is not waiting.

Pure: the driver tells a :class:`Goodput` what happened and when (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tune_ckpt import result as keys


def useful_seconds(result: dict[str, Any]) -> float:
    """The step time of ``result``'s line of results: its ``time_total_s`` (0 if none)."""
    value = result.get(keys.TIME_TOTAL_S, 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def ratio(useful_s: float, overhead_s: float) -> float:
    """``useful / (useful + overhead)``; 1.0 when nothing was spent at all."""
    total = useful_s + overhead_s
    return useful_s / total if total > 0 else 1.0


@dataclass
class Goodput:
    """One trial's fault and checkpoint costs so far (see the module docstring)."""

    lost_s: float = 0.0
    checkpointing_s: float = 0.0
    waiting_s: float = 0.0
    # When the trial was interrupted (monotonic), while it waits to run again; not
    # persisted: a restarted driver's clock is another one.
    waiting_since: float | None = field(default=None, compare=False, repr=False)

    @property
    def overhead_s(self) -> float:
        return self.lost_s + self.checkpointing_s + self.waiting_s

    def rolled_back(self, reached: dict[str, Any], restored_total_s: float) -> float:
        """The trial had recorded ``reached`` and restarts from a checkpoint whose
        ``time_total_s`` is ``restored_total_s`` (0: from scratch): the steps between are
        lost. Returns the seconds added."""
        lost = max(0.0, useful_seconds(reached) - restored_total_s)
        self.lost_s += lost
        return lost

    def checkpointed(self, seconds: float) -> None:
        """A checkpoint took ``seconds`` to save and commit."""
        self.checkpointing_s += max(0.0, seconds)

    def interrupted(self, now: float) -> None:
        """The trial lost its worker (failure, lost node, preemption): waiting starts,
        unless it is already waiting (a replacement lost before it ran)."""
        if self.waiting_since is None:
            self.waiting_since = now

    def resumed(self, now: float) -> None:
        """The trial steps again; nothing happens unless it was waiting."""
        if self.waiting_since is not None:
            self.waiting_s += max(0.0, now - self.waiting_since)
            self.waiting_since = None

    def fraction(self, useful_s: float) -> float:
        """Goodput given the trial's useful step time."""
        return ratio(useful_s, self.overhead_s)

    def fields(self, useful_s: float) -> dict[str, float]:
        """The result fields (``time_lost_s``, ... ``goodput``) as they stand."""
        return {
            keys.TIME_LOST_S: self.lost_s,
            keys.TIME_CHECKPOINTING_S: self.checkpointing_s,
            keys.TIME_WAITING_S: self.waiting_s,
            keys.GOODPUT: self.fraction(useful_s),
        }

    def to_json(self) -> dict[str, float]:
        return {
            "lost_s": self.lost_s,
            "checkpointing_s": self.checkpointing_s,
            "waiting_s": self.waiting_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Goodput:
        """The totals from :meth:`to_json`; none (a journal of an earlier version): zeros."""
        data = data or {}
        return cls(
            lost_s=float(data.get("lost_s", 0.0)),
            checkpointing_s=float(data.get("checkpointing_s", 0.0)),
            waiting_s=float(data.get("waiting_s", 0.0)),
        )


@dataclass(frozen=True)
class SweepGoodput:
    """A sweep's totals over its trials, in seconds."""

    useful_s: float
    lost_s: float
    checkpointing_s: float
    waiting_s: float

    @classmethod
    def of(cls, trials: Iterable[tuple[Goodput, float]]) -> SweepGoodput:
        """Sum of ``(trial's goodput, its useful seconds)`` pairs."""
        useful = lost = checkpointing = waiting = 0.0
        for goodput, useful_s in trials:
            useful += useful_s
            lost += goodput.lost_s
            checkpointing += goodput.checkpointing_s
            waiting += goodput.waiting_s
        return cls(useful, lost, checkpointing, waiting)

    @property
    def goodput(self) -> float:
        return ratio(self.useful_s, self.lost_s + self.checkpointing_s + self.waiting_s)

    def to_json(self) -> dict[str, float]:
        return {
            "useful_s": self.useful_s,
            keys.TIME_LOST_S: self.lost_s,
            keys.TIME_CHECKPOINTING_S: self.checkpointing_s,
            keys.TIME_WAITING_S: self.waiting_s,
            keys.GOODPUT: self.goodput,
        }

    def describe(self) -> str:
        """One line for people: ``goodput 97.1% of 120.0 s step time: ...``."""
        return (
            f"goodput {self.goodput:.1%} of {_seconds(self.useful_s)} s step time: "
            f"{_seconds(self.lost_s)} s lost to redone steps, {_seconds(self.checkpointing_s)}"
            f" s checkpointing, {_seconds(self.waiting_s)} s waiting to be rescheduled"
        )


def _seconds(value: float) -> str:
    # Tenths hide what short steps cost ("0.0 s of 0.0 s"): milliseconds below 0.1 s.
    return f"{value:.3f}" if 0 < value < 0.1 else f"{value:.1f}"
