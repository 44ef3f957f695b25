"""The scheduler interface, FIFO, ASHA and the median stopping rule, without Ray."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tune_ckpt.schedulers import (
    ASHAScheduler,
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    SchedulerDecision,
    StateError,
    TrialScheduler,
    TrialsView,
)
from tune_ckpt.trial import Trial, TrialStatus

from .sched_helpers import MiniDriver, make_trials

C, P, S = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.STOP


def test_decisions_are_ray_tunes_strings_on_the_class() -> None:
    assert TrialScheduler.CONTINUE == "CONTINUE" and TrialScheduler.NOOP == "NOOP"
    assert isinstance(FIFOScheduler.PAUSE, SchedulerDecision)
    assert ASHAScheduler is AsyncHyperBandScheduler


def test_fifo_continues_and_runs_the_first_pending_then_paused() -> None:
    trials = make_trials(3)
    trials[1].set_status(TrialStatus.PAUSED)
    pending = Trial(trial_id="p", config={}, trial_dir="p")
    view = TrialsView([*trials, pending])
    fifo = FIFOScheduler()
    assert fifo.on_trial_result(view, trials[0], {"x": 1}) == C
    assert fifo.choose_trial_to_run(view) is pending
    pending.set_status(TrialStatus.RUNNING)
    assert fifo.choose_trial_to_run(view) is trials[1]


class StopAtFive(TrialScheduler):
    """A user scheduler that overrides only on_trial_result."""

    def on_trial_result(self, runner: Any, trial: Trial, result: dict[str, Any]) -> Any:
        return self.STOP if result["training_iteration"] >= 5 else self.CONTINUE


def test_a_user_subclass_with_only_on_trial_result_works() -> None:
    trials = make_trials(1)
    driver = MiniDriver(StopAtFive(), trials)
    assert driver.report("t0", training_iteration=4) == C
    assert driver.report("t0", training_iteration=5) == S
    assert driver.scheduler.pop_actions() == []
    assert driver.scheduler.choose_trial_to_run(driver.view) is None
    state = driver.scheduler.save_state()
    StopAtFive().restore_state(json.loads(json.dumps(state)))


def test_a_state_of_another_scheduler_or_version_is_refused() -> None:
    state = FIFOScheduler().save_state()
    with pytest.raises(StateError, match="does not fit AsyncHyperBandScheduler"):
        AsyncHyperBandScheduler(metric="m", mode="max").restore_state(state)
    with pytest.raises(StateError, match="version=99"):
        FIFOScheduler().restore_state({**state, "version": 99})


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_t": 0}, "max_t=0"),
        ({"grace_period": 0}, "grace_period=0"),
        ({"grace_period": 10, "max_t": 5}, "grace_period=10"),
        ({"reduction_factor": 1}, "reduction_factor=1"),
        ({"brackets": 0}, "brackets=0"),
        ({"mode": "maximize"}, "mode='maximize'"),
    ],
)
def test_asha_rejects_bad_arguments_by_name(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(")):
        ASHAScheduler(**kwargs)


def test_asha_needs_metric_and_mode_before_trials() -> None:
    with pytest.raises(ValueError, match="no metric"):
        ASHAScheduler().on_trial_add(TrialsView(), make_trials(1)[0])
    asha = ASHAScheduler()
    assert asha.set_search_properties("acc", "max")
    assert not asha.set_search_properties("loss", None)
    assert asha.metric == "acc"


# 9 trials, rf 3, grace 1, max_t 9: rungs at 1, 3 and 9. Cutoff = the 2/3 quantile (linear
# interpolation) of the scores already in the rung, worked out by hand:
RUNG_1 = [  # (score, cutoff before it, decision)
    (5, None, C),
    (3, 5.0, S),
    (8, 3 + 2 * 2 / 3, C),  # [3, 5] -> 4.33
    (1, 6.0, S),  # [3, 5, 8]: position 1.33 -> 5 + 3/3
    (9, 5.0, C),  # [1, 3, 5, 8]: position 2
    (2, 7.0, S),  # [1, 3, 5, 8, 9]: position 2.67 -> 5 + 2
    (7, 6.0, C),  # [1, 2, 3, 5, 8, 9]: position 3.33 -> 5 + 1
    (4, 7.0, S),  # [1, 2, 3, 5, 7, 8, 9]: position 4
    (6, 7 + 2 / 3, S),  # [1, 2, 3, 4, 5, 7, 8, 9]: position 4.67
]


def _asha_9() -> MiniDriver:
    return MiniDriver(
        ASHAScheduler(metric="acc", mode="max", max_t=9, grace_period=1, reduction_factor=3),
        make_trials(9),
    )


def test_asha_rungs_stop_below_the_quantile_and_everyone_at_max_t() -> None:
    driver = _asha_9()
    for index, (score, _, expected) in enumerate(RUNG_1):
        assert driver.report(f"t{index}", training_iteration=1, acc=score) == expected, index
    asha = driver.scheduler
    assert isinstance(asha, AsyncHyperBandScheduler)
    assert [m for m, _ in asha.cutoffs()] == [9, 3, 1]
    # Rung 3: t0 10 (first), t2 6 < 10 stops, t4 12 >= 8.67, t6 11 >= 10.67.
    rung_3 = {"t0": (10, C), "t2": (6, S), "t4": (12, C), "t6": (11, C)}
    for trial_id, (score, expected) in rung_3.items():
        assert driver.report(trial_id, training_iteration=2, acc=score) == C  # between rungs
        assert driver.report(trial_id, training_iteration=3, acc=score) == expected
    for trial_id in ("t0", "t4", "t6"):
        assert driver.report(trial_id, training_iteration=9, acc=0) == S
    assert "num_stopped=9" in asha.debug_string()


def test_asha_ties_continue_and_min_mode_flips() -> None:
    driver = MiniDriver(
        ASHAScheduler(metric="loss", mode="min", max_t=9, reduction_factor=3), make_trials(3)
    )
    assert driver.report("t0", training_iteration=1, loss=2.0) == C
    assert driver.report("t1", training_iteration=1, loss=2.0) == C  # tie with cutoff
    assert driver.report("t2", training_iteration=1, loss=3.0) == S  # a higher loss is worse


def test_asha_without_stop_last_trials_runs_on_past_max_t() -> None:
    driver = MiniDriver(
        ASHAScheduler(metric="a", mode="max", max_t=3, reduction_factor=3, stop_last_trials=False),
        make_trials(2),
    )
    assert driver.report("t0", training_iteration=3, a=5) == C
    assert driver.report("t0", training_iteration=4, a=5) == C
    assert driver.report("t1", training_iteration=3, a=1) == S


def test_asha_results_without_the_fields_continue() -> None:
    driver = _asha_9()
    assert driver.report("t0", training_iteration=1) == C
    assert driver.report("t1", acc=3) == C


def test_asha_state_round_trip_gives_the_same_decisions() -> None:
    driver = _asha_9()
    for index, (score, _, _) in enumerate(RUNG_1[:5]):
        driver.report(f"t{index}", training_iteration=1, acc=score)
    state = json.loads(json.dumps(driver.scheduler.save_state()))
    fresh = ASHAScheduler(metric="acc", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    fresh.restore_state(state)
    driver.scheduler = fresh
    for index, (score, _, expected) in enumerate(RUNG_1[5:], start=5):
        assert driver.report(f"t{index}", training_iteration=1, acc=score) == expected


def test_asha_brackets_are_drawn_from_a_seeded_generator() -> None:
    def draw(seed: int) -> dict[str, int]:
        asha = ASHAScheduler(metric="a", mode="max", brackets=3, seed=seed)
        for trial in make_trials(20):
            asha.on_trial_add(TrialsView(), trial)
        return asha.save_state()["trial_bracket"]

    assert draw(1) == draw(1)
    assert set(draw(1).values()) <= {0, 1, 2}
    # Brackets with more rungs are likelier (weights e^0, e^-1, e^-2).
    counts = [list(draw(2).values()).count(b) for b in range(3)]
    assert counts[0] > counts[2]


def _median(hard_stop: bool) -> MiniDriver:
    rule = MedianStoppingRule(
        time_attr="training_iteration",
        metric="acc",
        mode="max",
        grace_period=1,
        min_samples_required=2,
        hard_stop=hard_stop,
    )
    driver = MiniDriver(rule, make_trials(4))
    for step in (1, 2, 3):
        driver.report("t0", training_iteration=step, acc=10)
        driver.report("t1", training_iteration=step, acc=8)
    return driver


def test_median_stops_below_the_median_of_running_means() -> None:
    driver = _median(hard_stop=True)
    # Others at t=1: means 10 and 8, median 9; t2's best 9 ties: continues.
    assert driver.report("t2", training_iteration=1, acc=9) == C
    # t3's best 8.5 < median 9 (t2's mean is 9 too) -> stop.
    assert driver.report("t3", training_iteration=1, acc=8.5) == S


def test_median_without_hard_stop_pauses_once_then_leaves_the_trial_alone() -> None:
    driver = _median(hard_stop=False)
    assert driver.report("t3", training_iteration=1, acc=1) == P
    assert driver.report("t3", training_iteration=2, acc=1) == C


def test_median_with_too_few_samples_yields_only_to_waiting_trials() -> None:
    driver = _median(hard_stop=True)
    assert driver.report("t0", training_iteration=4, acc=10) == C  # nobody waits
    driver.by_id["t2"].set_status(TrialStatus.PAUSED)
    assert driver.report("t0", training_iteration=5, acc=10) == P
    state = json.loads(json.dumps(driver.scheduler.save_state()))
    assert state["last_pause"] == {"t0": 5.0}


def test_median_rejects_bad_arguments_by_name() -> None:
    with pytest.raises(ValueError, match="min_samples_required=0"):
        MedianStoppingRule(min_samples_required=0)
