"""Emergency checkpoints for the trials on a draining node: which to save, in what order,
and which to move or stop at once. Pure decisions: no Ray, no clock (``now`` is passed in).

A node drained with a deadline leaves ``budget = deadline - now - margin`` seconds for
saves. Each trial's save is worth ``value = unsaved seconds x resources`` (the work a
restart would redo) and costs its measured save-and-commit time. At most ``lanes`` saves
run at once per node (two uploads share its network and disk), so the saves are a
schedule on that many lanes: each save starts on the lane that frees first, in priority
order, and the plan holds only saves whose schedule ends within the budget.

Priority is value per second of cost, highest first (ties: the larger value, then the
trial id). Greedy is not always optimal -- the problem is a knapsack over two lanes --
and falls short in two ways: a small save of high density can take the time two larger
saves of slightly lower density needed together (budget 4: costs 1 and 4 and 4, values 10,
36, 36: greedy saves 46, the best is 72), and the first-free-lane packing can leave room
on both lanes that no remaining save fits although a different split would. Both need
saves of very different sizes near the budget; the runner re-plans as saves finish (pass
``lanes_free_in_s``), which recovers some of it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tune_ckpt.config import finite_number


class EmergencyAction(enum.Enum):
    """What happens to a trial on a draining node."""

    SAVE = "save"  # an emergency checkpoint now, then resume elsewhere from it
    MOVE = "move"  # at once, without a save: nothing unsaved, or it cannot checkpoint
    STOP = "stop"  # at once, without a save: it would not fit the budget; resumes from
    # its last committed checkpoint and redoes the work since


def _bad(name: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"{name}={value!r} is invalid: {allowed}")


@dataclass(frozen=True)
class EmergencyPolicy:
    """The timing rules of emergency checkpoints.

    Args:
        default_deadline_s: seconds to assume when a drain gives no deadline (0 or None).
        poll_interval_s: how often the runner reads the draining nodes: a drain may be
            seen this late, so it is part of the margin.
        min_margin_s: the smallest safety margin beyond the poll interval.
        margin_fraction: the margin as a fraction of the time to the deadline, when that
            is larger than ``min_margin_s``.
        lanes: saves running at once on one draining node.
    """

    default_deadline_s: float = 30.0
    poll_interval_s: float = 1.0
    min_margin_s: float = 3.0
    margin_fraction: float = 0.1
    lanes: int = 2

    def __post_init__(self) -> None:
        finite_number("default_deadline_s", self.default_deadline_s, 0, strict=True)
        finite_number("poll_interval_s", self.poll_interval_s, 0, strict=False)
        finite_number("min_margin_s", self.min_margin_s, 0, strict=False)
        fraction = finite_number("margin_fraction", self.margin_fraction, 0, strict=False)
        if fraction >= 1:
            raise _bad("margin_fraction", self.margin_fraction, "a number in [0, 1)")
        if isinstance(self.lanes, bool) or not isinstance(self.lanes, int) or self.lanes < 1:
            raise _bad("lanes", self.lanes, "an integer >= 1")

    def seconds_to_deadline(self, deadline: float | None, now: float) -> float:
        """Seconds from ``now`` to ``deadline`` (epoch seconds); the default when the drain
        gave none (``None`` or ``0``, Ray's "no deadline")."""
        if not deadline:
            return self.default_deadline_s
        return deadline - now

    def margin_s(self, seconds_to_deadline: float) -> float:
        """Kept free before the deadline: the poll interval plus the larger of the minimum
        margin and a fraction of the time left."""
        return self.poll_interval_s + max(
            self.min_margin_s, self.margin_fraction * max(seconds_to_deadline, 0.0)
        )

    def budget_s(self, deadline: float | None, now: float) -> float:
        """Seconds available for saves from ``now`` (never below 0)."""
        left = self.seconds_to_deadline(deadline, now)
        return max(0.0, left - self.margin_s(left))


@dataclass(frozen=True)
class DrainingTrial:
    """A trial on a draining node, as the planner sees it.

    Args:
        trial_id: the trial.
        unsaved_s: seconds of training since its last committed checkpoint.
        weight: the resources it holds (e.g. CPUs + GPUs): a second of a larger trial is
            worth more.
        save_cost_s: its expected save-and-commit time (``SaveCostTracker.estimate``).
        can_checkpoint: False for a trainable that cannot save (no ``save_checkpoint``;
            a function that gave ``report()`` no checkpoint).
        has_unsaved: False when no step finished since the last checkpoint (a trial
            restoring, or one that just saved): a save would add nothing.
    """

    trial_id: str
    unsaved_s: float
    weight: float = 1.0
    save_cost_s: float = 1.0
    can_checkpoint: bool = True
    has_unsaved: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.trial_id, str) or not self.trial_id:
            raise _bad("trial_id", self.trial_id, "a non-empty string")
        finite_number("unsaved_s", self.unsaved_s, 0, strict=False)
        finite_number("weight", self.weight, 0, strict=True)
        finite_number("save_cost_s", self.save_cost_s, 0, strict=True)

    @property
    def value(self) -> float:
        """The work a save keeps: unsaved seconds times resources."""
        return self.unsaved_s * self.weight

    @property
    def worth_saving(self) -> bool:
        return self.can_checkpoint and self.has_unsaved


@dataclass(frozen=True)
class PlannedSave:
    """One save in the schedule: its lane and when it should start and end, in seconds
    from the plan's ``now``."""

    trial_id: str
    lane: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class EmergencyPlan:
    """The plan for one draining node. ``saves`` are in priority order (the order to start
    them, at most ``lanes`` at a time); ``moves`` and ``stops`` happen at once."""

    budget_s: float
    saves: tuple[PlannedSave, ...]
    moves: tuple[str, ...]
    stops: tuple[str, ...]
    saved_value: float
    lost_value: float  # the unsaved value of the trials not saved: work to be redone
    actions: dict[str, EmergencyAction] = field(repr=False)

    @property
    def save_order(self) -> tuple[str, ...]:
        return tuple(save.trial_id for save in self.saves)

    def action(self, trial_id: str) -> EmergencyAction:
        return self.actions[trial_id]


def _priority(trial: DrainingTrial) -> tuple[float, float, str]:
    return (-trial.value / trial.save_cost_s, -trial.value, trial.trial_id)


def plan_emergency(
    trials: Iterable[DrainingTrial],
    deadline: float | None,
    now: float,
    policy: EmergencyPolicy | None = None,
    lanes_free_in_s: Sequence[float] = (),
) -> EmergencyPlan:
    """Plan the emergency checkpoints of the trials on one draining node.

    Args:
        trials: the node's trials (each once).
        deadline: the drain's deadline in epoch seconds; None or 0 for none given.
        now: the current time in epoch seconds.
        policy: the timing rules (default ``EmergencyPolicy()``).
        lanes_free_in_s: when re-planning with saves under way, the seconds until each
            busy lane frees; missing lanes are free now.
    """
    policy = policy or EmergencyPolicy()
    trials = list(trials)
    ids = [trial.trial_id for trial in trials]
    if len(set(ids)) != len(ids):
        raise _bad("trials", sorted(ids), "each trial once")
    if len(lanes_free_in_s) > policy.lanes:
        raise _bad("lanes_free_in_s", lanes_free_in_s, f"at most {policy.lanes} lanes")
    budget = policy.budget_s(deadline, now)
    lanes = [max(0.0, float(free)) for free in lanes_free_in_s]
    lanes += [0.0] * (policy.lanes - len(lanes))

    actions: dict[str, EmergencyAction] = {}
    saves: list[PlannedSave] = []
    moves = [trial.trial_id for trial in trials if not trial.worth_saving]
    stops: list[str] = []
    saved_value = 0.0
    for trial in sorted((t for t in trials if t.worth_saving), key=_priority):
        lane = min(range(len(lanes)), key=lambda i: (lanes[i], i))
        end = lanes[lane] + trial.save_cost_s
        if end <= budget:
            saves.append(PlannedSave(trial.trial_id, lane, lanes[lane], end))
            lanes[lane] = end
            saved_value += trial.value
            actions[trial.trial_id] = EmergencyAction.SAVE
        else:  # a later, cheaper save may still fit: keep looking
            stops.append(trial.trial_id)
            actions[trial.trial_id] = EmergencyAction.STOP
    actions.update(dict.fromkeys(moves, EmergencyAction.MOVE))
    # Lost: what stopped trials and trials that cannot checkpoint ran since their last save.
    lost_value = sum(
        t.value for t in trials if actions[t.trial_id] is not EmergencyAction.SAVE and t.has_unsaved
    )
    return EmergencyPlan(
        budget_s=budget,
        saves=tuple(saves),
        moves=tuple(moves),
        stops=tuple(stops),
        saved_value=saved_value,
        lost_value=lost_value,
        actions=actions,
    )


class SaveCostTracker:
    """Each trial's save-and-commit time as an exponentially weighted moving average.

    A trial never saved is estimated at the mean of the other trials' averages (the same
    trainable, usually the same state size), or ``default_s`` when none has saved yet.
    """

    def __init__(self, alpha: float = 0.3, default_s: float = 5.0) -> None:
        if finite_number("alpha", alpha, 0, strict=True) > 1:
            raise _bad("alpha", alpha, "a number in (0, 1]")
        self.alpha = float(alpha)
        self.default_s = finite_number("default_s", default_s, 0, strict=True)
        self._average: dict[str, float] = {}

    def record(self, trial_id: str, seconds: float) -> None:
        """Fold in one measured save of ``trial_id`` (from the start of the save to its
        commit, as the worker reports it)."""
        seconds = finite_number("seconds", seconds, 0, strict=False)
        previous = self._average.get(trial_id)
        self._average[trial_id] = (
            seconds if previous is None else previous + self.alpha * (seconds - previous)
        )

    def estimate(self, trial_id: str) -> float:
        """The expected save time of ``trial_id`` (> 0: a save is never free)."""
        if trial_id in self._average:
            return max(self._average[trial_id], 1e-3)
        if self._average:
            return max(sum(self._average.values()) / len(self._average), 1e-3)
        return self.default_s

    def forget(self, trial_id: str) -> None:
        """Drop a finished trial's average."""
        self._average.pop(trial_id, None)
