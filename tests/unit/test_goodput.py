"""Goodput accounting without Ray: what a roll-back loses, what waiting and checkpoints
cost, the ratio, the sweep's totals and the trial's JSON state."""

from __future__ import annotations

import pytest

from tune_ckpt.goodput import Goodput, SweepGoodput, ratio, useful_seconds
from tune_ckpt.trial import Trial


def _result(iteration: int, step_s: float = 0.5) -> dict[str, float]:
    return {"training_iteration": iteration, "time_total_s": iteration * step_s}


def test_a_roll_back_loses_the_step_time_after_the_checkpoint() -> None:
    """Reached iteration 13 (6.5 s of steps), restored the checkpoint of 10 (5.0 s): the
    1.5 s of iterations 11 to 13 are lost; a second roll-back to where it already is loses
    nothing more, and one from scratch loses all of it."""
    goodput = Goodput()
    assert goodput.rolled_back(_result(13), _result(10)["time_total_s"]) == pytest.approx(1.5)
    assert goodput.rolled_back(_result(10), 5.0) == 0.0
    assert goodput.rolled_back(_result(4), 0.0) == pytest.approx(2.0)
    assert goodput.lost_s == pytest.approx(3.5)


def test_a_roll_back_to_a_later_checkpoint_loses_nothing() -> None:
    """An emergency checkpoint newer than the last result the driver saw (or a result
    without timing) never counts negative time."""
    goodput = Goodput()
    assert goodput.rolled_back(_result(10), 6.0) == 0.0
    assert goodput.rolled_back({}, 0.0) == 0.0
    assert goodput.rolled_back({"time_total_s": "n/a"}, 0.0) == 0.0
    assert goodput.lost_s == 0.0


def test_waiting_runs_from_the_first_interruption_to_the_next_step() -> None:
    """A replacement lost before it ran does not restart the clock; steps that were not
    preceded by an interruption add nothing."""
    goodput = Goodput()
    goodput.resumed(5.0)
    assert goodput.waiting_s == 0.0
    goodput.interrupted(10.0)
    goodput.interrupted(12.0)  # its new actor was lost too: still the same wait
    goodput.resumed(13.5)
    goodput.resumed(20.0)
    assert goodput.waiting_s == pytest.approx(3.5)
    goodput.interrupted(30.0)
    goodput.resumed(31.0)
    assert goodput.waiting_s == pytest.approx(4.5)


def test_fields_and_the_ratio() -> None:
    goodput = Goodput(lost_s=1.0, checkpointing_s=2.0, waiting_s=1.0)
    goodput.checkpointed(1.0)
    goodput.checkpointed(-0.5)  # a clock step backwards counts nothing
    assert goodput.fields(15.0) == {
        "time_lost_s": 1.0,
        "time_checkpointing_s": 3.0,
        "time_waiting_s": 1.0,
        "goodput": pytest.approx(0.75),
    }
    assert ratio(0.0, 0.0) == 1.0  # nothing ran, nothing wasted
    assert ratio(0.0, 2.0) == 0.0
    assert useful_seconds({"time_total_s": 7}) == 7.0


def test_the_sweep_sums_its_trials() -> None:
    sweep = SweepGoodput.of(
        [
            (Goodput(lost_s=1.0, checkpointing_s=0.5), 10.0),
            (Goodput(waiting_s=2.0, checkpointing_s=0.5), 6.0),
        ]
    )
    assert (sweep.useful_s, sweep.lost_s, sweep.checkpointing_s, sweep.waiting_s) == (
        16.0,
        1.0,
        1.0,
        2.0,
    )
    assert sweep.goodput == pytest.approx(0.8)
    assert sweep.to_json()["goodput"] == pytest.approx(0.8)
    assert sweep.describe() == (
        "goodput 80.0% of 16.0 s step time: 1.0 s lost to redone steps, 1.0 s "
        "checkpointing, 2.0 s waiting to be rescheduled"
    )


def test_the_totals_survive_the_trials_json_state_but_not_a_wait_in_progress() -> None:
    """What Tuner.restore reads back: the totals; a wait under way belongs to the driver
    that saw the interruption. A journal written before goodput existed reads as zeros."""
    trial = Trial("a", {}, "a")
    trial.goodput = Goodput(lost_s=1.5, checkpointing_s=0.25, waiting_s=3.0)
    trial.goodput.interrupted(100.0)
    again = Trial.from_json(trial.to_json())
    assert again.goodput == Goodput(lost_s=1.5, checkpointing_s=0.25, waiting_s=3.0)
    assert again.goodput.waiting_since is None
    old = trial.to_json()
    del old["goodput"]
    assert Trial.from_json(old).goodput == Goodput()


def test_short_steps_are_described_in_milliseconds() -> None:
    """A sweep of steps far under 0.1 s: the line still says what each part cost."""
    sweep = SweepGoodput.of([(Goodput(lost_s=0.004, checkpointing_s=0.05, waiting_s=0.6), 0.03)])
    assert sweep.describe() == (
        "goodput 4.4% of 0.030 s step time: 0.004 s lost to redone steps, 0.050 s "
        "checkpointing, 0.6 s waiting to be rescheduled"
    )
