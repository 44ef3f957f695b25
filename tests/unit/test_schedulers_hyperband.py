"""HyperBand's brackets, halvings, pauses and resumes for max_t=81, reduction_factor=3."""

from __future__ import annotations

import json

import pytest

from tune_ckpt.schedulers import HyperBandScheduler, SchedulerDecision
from tune_ckpt.trial import TrialStatus

from .sched_helpers import MiniDriver, make_trials

C, P, S = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP
# Bracket s=1 (t5..t12) at its first milestone, 27: scores by trial.
SCORES = {"t5": 3, "t6": 8, "t7": 1, "t8": 7, "t9": 2, "t10": 6, "t11": 5, "t12": 4}


def _driver() -> MiniDriver:
    return MiniDriver(HyperBandScheduler(metric="acc", mode="max"), make_trials(13))


def test_bracket_sizes_and_first_milestones_follow_ray() -> None:
    hb = HyperBandScheduler(metric="acc", mode="max")
    assert [hb.bracket_size(s) for s in range(5)] == [5, 8, 15, 34, 81]
    assert [hb.first_milestone(s) for s in range(5)] == [81, 27, 9, 3, 1]


def test_trials_fill_the_smallest_bracket_first() -> None:
    state = _driver().scheduler.save_state()
    (band,) = state["bands"]
    assert [[t for t, _ in b["live"]] for b in band] == [
        [f"t{i}" for i in range(5)],
        [f"t{i}" for i in range(5, 13)],
    ]
    assert [b["cumul_r"] for b in band] == [81, 27]


def test_a_bracket_pauses_at_its_milestone_then_keeps_the_top_third() -> None:
    driver = _driver()
    assert driver.report("t5", training_iteration=26, acc=0) == C  # below the milestone
    for trial_id in list(SCORES)[:-1]:
        assert driver.report(trial_id, training_iteration=27, acc=SCORES[trial_id]) == P
    # The last one to arrive is halved with the others: ceil(8/3) = 3 stay.
    assert driver.report("t12", training_iteration=27, acc=SCORES["t12"]) == S
    assert sorted(driver.last_stopped) == ["t11", "t5", "t7", "t9"]
    hb = driver.scheduler
    # Bracket 0's trials are running; the promoted paused ones resume in joining order.
    chosen = hb.choose_trial_to_run(driver.view)
    assert chosen is not None and chosen.trial_id == "t6"
    # Next milestone: int(min(27 * 3, 81 - 27)) = 54 (Ray's arithmetic); then all stop.
    assert driver.report("t6", training_iteration=54, acc=9) == P
    chosen = hb.choose_trial_to_run(driver.view)
    assert chosen is not None and chosen.trial_id == "t8"
    assert driver.report("t8", training_iteration=53, acc=9) == C
    assert driver.report("t8", training_iteration=54, acc=9) == P
    assert driver.report("t10", training_iteration=54, acc=1) == S
    assert sorted(driver.last_stopped) == ["t6", "t8"]
    assert hb.choose_trial_to_run(driver.view) is None


def test_the_last_arrival_continues_when_it_is_promoted() -> None:
    driver = _driver()
    scores = dict(SCORES, t12=10)
    for trial_id, score in scores.items():
        decision = driver.report(trial_id, training_iteration=27, acc=score)
    assert decision == C
    assert sorted(driver.last_stopped) == ["t10", "t11", "t5", "t7", "t9"]


def test_a_trial_that_fails_before_its_milestone_releases_the_others() -> None:
    driver = _driver()
    for trial_id in list(SCORES)[:-1]:
        driver.report(trial_id, training_iteration=27, acc=SCORES[trial_id])
    failed = driver.by_id["t12"]
    failed.set_status(TrialStatus.ERROR)
    driver.scheduler.on_trial_error(driver.view, failed)
    assert sorted(driver.apply_stops()) == ["t11", "t5", "t7", "t9"]
    chosen = driver.scheduler.choose_trial_to_run(driver.view)
    assert chosen is not None and chosen.trial_id == "t6"


def test_bracket_zero_runs_to_max_t_and_stops() -> None:
    driver = _driver()
    for index in range(4):
        assert driver.report(f"t{index}", training_iteration=81, acc=index) == P
    assert driver.report("t4", training_iteration=81, acc=0) == S
    assert sorted(driver.last_stopped) == ["t0", "t1", "t2", "t3"]


def test_state_round_trip_gives_the_same_promotions() -> None:
    driver = _driver()
    items = list(SCORES.items())
    for trial_id, score in items[:4]:
        driver.report(trial_id, training_iteration=27, acc=score)
    state = json.loads(json.dumps(driver.scheduler.save_state()))
    fresh = HyperBandScheduler(metric="acc", mode="max")
    fresh.restore_state(state)
    driver.scheduler = fresh
    for trial_id, score in items[4:-1]:
        assert driver.report(trial_id, training_iteration=27, acc=score) == P
    assert driver.report("t12", training_iteration=27, acc=4) == S
    assert sorted(driver.last_stopped) == ["t11", "t5", "t7", "t9"]


def test_a_fourteenth_trial_opens_the_next_bracket() -> None:
    hb = HyperBandScheduler(metric="acc", mode="max")
    MiniDriver(hb, make_trials(14))
    assert [len(b["live"]) for b in hb.save_state()["bands"][0]] == [5, 8, 1]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="reduction_factor=1"):
        HyperBandScheduler(reduction_factor=1)
