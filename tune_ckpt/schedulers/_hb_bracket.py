"""One HyperBand bracket: its trials' latest time and score, milestones and halvings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Bracket:
    """Bookkeeping of one bracket (Ray Tune's ``_Bracket``), trials named by id.

    ``live`` maps each trial still in the bracket to ``[time, score]`` of its latest result
    (None before its first), in the order trials joined: ties in a halving keep that order.
    """

    n: int
    n0: int
    r: int
    cumul_r: int
    eta: float
    halves: int
    total_work: int
    completed_progress: float = 0.0
    live: dict[str, list[float] | None] = field(default_factory=dict)
    all_trials: list[str] = field(default_factory=list)
    to_unpause: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, n0: int, r0: int, max_t: float, eta: float, s: int) -> Bracket:
        return cls(
            n=n0,
            n0=n0,
            r=r0,
            cumul_r=r0,
            eta=eta,
            halves=s,
            total_work=_total_work(n0, r0, s, eta, max_t),
        )

    def add_trial(self, trial_id: str) -> None:
        if self.filled():
            raise RuntimeError(f"bracket is full ({self.n} trials): cannot add {trial_id}")
        self.live[trial_id] = None
        self.all_trials.append(trial_id)

    def filled(self) -> bool:
        return len(self.live) == self.n

    def _time(self, trial_id: str) -> float:
        entry = self.live[trial_id]
        return 0.0 if entry is None else entry[0]

    def update(self, trial_id: str, time: float, score: float) -> None:
        self.completed_progress += time - self._time(trial_id)
        self.live[trial_id] = [time, score]
        self.to_unpause.discard(trial_id)

    def remove(self, trial_id: str) -> None:
        self.live.pop(trial_id, None)
        self.to_unpause.discard(trial_id)

    def cur_iter_done(self) -> bool:
        return all(self._time(t) >= self.cumul_r for t in self.live)

    def finished(self, stop_last_trials: bool) -> bool:
        return stop_last_trials and self.halves == 0 and self.cur_iter_done()

    def continue_trial(self, trial_id: str, stop_last_trials: bool) -> bool:
        if not stop_last_trials and self.halves == 0:
            return True
        return self._time(trial_id) < self.cumul_r

    def successive_halving(
        self, max_t: float, stop_last_trials: bool
    ) -> tuple[list[str], list[str]]:
        """Advance to the next milestone; (good, bad) trial ids, worst first."""
        if self.halves == 0 and not stop_last_trials:
            return list(self.live), []
        if self.halves <= 0:
            raise RuntimeError("a bracket with no halvings left cannot be halved")
        self.halves -= 1
        self.n = math.ceil(self.n / self.eta)
        self.r = int(min(self.r * self.eta, max_t - self.cumul_r))
        self.cumul_r = self.r
        ranked = sorted(self.live, key=lambda t: _score(self.live[t]))
        cut = len(ranked) - self.n
        return ranked[max(cut, 0) :], ranked[: max(cut, 0)]

    def completion_percentage(self) -> float:
        if self.halves == 0 and self.cur_iter_done():
            return 1.0
        return min(self.completed_progress / self.total_work, 1.0)

    def describe(self, stop_last_trials: bool) -> str:
        done = 1.0 if self.finished(stop_last_trials) else self.completion_percentage()
        return (
            f"Bracket(Max Size (n)={self.n}, Milestone (r)={self.cumul_r}, "
            f"completed={done:.1%}): {len(self.live)} live of {len(self.all_trials)}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n0": self.n0,
            "r": self.r,
            "cumul_r": self.cumul_r,
            "eta": self.eta,
            "halves": self.halves,
            "total_work": self.total_work,
            "completed_progress": self.completed_progress,
            "live": [[t, v] for t, v in self.live.items()],
            "all_trials": list(self.all_trials),
            "to_unpause": sorted(self.to_unpause),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bracket:
        return cls(
            n=int(data["n"]),
            n0=int(data["n0"]),
            r=int(data["r"]),
            cumul_r=int(data["cumul_r"]),
            eta=float(data["eta"]),
            halves=int(data["halves"]),
            total_work=int(data["total_work"]),
            completed_progress=float(data["completed_progress"]),
            live={t: (None if v is None else [float(v[0]), float(v[1])]) for t, v in data["live"]},
            all_trials=list(data["all_trials"]),
            to_unpause=set(data["to_unpause"]),
        )


def _score(entry: list[float] | None) -> float:
    return -math.inf if entry is None else entry[1]


def _total_work(n: int, r: int, s: int, eta: float, max_t: float) -> int:
    """Ray's estimate of a bracket's trial-time (its milestone arithmetic included)."""
    work = 0
    first_r = r
    n_f: float = n
    r_f: float = r
    for _ in range(s + 1):
        work += int(n_f) * int(r_f)
        n_f = math.ceil(n_f / eta)
        r_f = int(min(r_f * eta, max_t - first_r))
    return work
