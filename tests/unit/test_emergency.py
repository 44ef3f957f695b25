"""Emergency checkpoint planning (tune_ckpt.driver.emergency): budgets, priorities, the
two-lane schedule, and the greedy plan against an exhaustive search."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from tune_ckpt.driver.emergency import (
    DrainingTrial,
    EmergencyAction,
    EmergencyPolicy,
    PlannedSave,
    SaveCostTracker,
    plan_emergency,
)

NOW = 1_000_000.0


def _best_value(trials: list[DrainingTrial], budget: float, lanes: int = 2) -> float:
    """The most value any assignment of saves to lanes fits in ``budget``: every trial
    goes to one lane or is not saved (lanes**n... (lanes+1)**n assignments)."""
    candidates = [t for t in trials if t.worth_saving]
    best = 0.0
    for assignment in itertools.product(range(lanes + 1), repeat=len(candidates)):
        load = [0.0] * lanes
        value = 0.0
        for trial, lane in zip(candidates, assignment, strict=True):
            if lane < lanes:
                load[lane] += trial.save_cost_s
                value += trial.value
        if max(load) <= budget:
            best = max(best, value)
    return best


# The "Budget" case: six trials on the drained node, saves of 1 s to 4 s, a 6 s
# deadline. Values (unsaved seconds x weight): A 20, B 40, C 60, D 50, E 90, F 120;
# per second of save: A 20, B 26.7, C 30, D 20, E 30, F 30.
BUDGET_CASE = [
    DrainingTrial("A", unsaved_s=20, weight=1, save_cost_s=1.0),
    DrainingTrial("B", unsaved_s=40, weight=1, save_cost_s=1.5),
    DrainingTrial("C", unsaved_s=30, weight=2, save_cost_s=2.0),
    DrainingTrial("D", unsaved_s=50, weight=1, save_cost_s=2.5),
    DrainingTrial("E", unsaved_s=45, weight=2, save_cost_s=3.0),
    DrainingTrial("F", unsaved_s=60, weight=2, save_cost_s=4.0),
]


def test_the_budget_case_with_the_default_margin() -> None:
    # margin = poll 1 s + max(3 s, 0.6 s) = 4 s: 2 s for saves. Only A, B, C fit at all;
    # C (30/s) takes lane 0 until 2 s, B lane 1 until 1.5 s, and A no longer fits.
    plan = plan_emergency(BUDGET_CASE, deadline=NOW + 6, now=NOW)
    assert plan.budget_s == pytest.approx(2.0)
    assert plan.saves == (PlannedSave("C", 0, 0.0, 2.0), PlannedSave("B", 1, 0.0, 1.5))
    # Stopped in priority order: F, E (30/s, larger first), then D before A (20/s each).
    assert plan.stops == ("F", "E", "D", "A")
    assert plan.moves == ()
    assert plan.saved_value == 100 == _best_value(BUDGET_CASE, plan.budget_s)
    assert plan.lost_value == 20 + 50 + 90 + 120


def test_the_budget_case_polled_continuously() -> None:
    # No poll delay: 3 s for saves. F (4 s) never fits; E (30/s, larger than C) takes
    # lane 0 for 3 s, C lane 1 until 2 s, B would end at 3.5 s, A ends at exactly 3 s.
    policy = EmergencyPolicy(poll_interval_s=0)
    plan = plan_emergency(BUDGET_CASE, deadline=NOW + 6, now=NOW, policy=policy)
    assert plan.budget_s == pytest.approx(3.0)
    assert plan.save_order == ("E", "C", "A")
    assert plan.saves[-1] == PlannedSave("A", 1, 2.0, 3.0)
    assert plan.saved_value == 170 == _best_value(BUDGET_CASE, 3.0)
    assert plan.stops == ("F", "B", "D")
    assert all(plan.action(t) is EmergencyAction.STOP for t in plan.stops)


@pytest.mark.parametrize("seconds", [6, 10, 20, 30, 45, 60])
def test_greedy_matches_the_best_plan_on_the_budget_case_at_any_deadline(seconds: int) -> None:
    plan = plan_emergency(BUDGET_CASE, deadline=NOW + seconds, now=NOW)
    assert plan.saved_value == _best_value(BUDGET_CASE, plan.budget_s)
    # Two lanes, never more: no instant runs more than two saves.
    for save in plan.saves:
        running = [s for s in plan.saves if s.start_s <= save.start_s < s.end_s]
        assert len(running) <= 2
        assert save.end_s <= plan.budget_s


def test_where_greedy_falls_short() -> None:
    # Documented in the module: a small dense save takes the time two larger ones needed.
    trials = [
        DrainingTrial("small", unsaved_s=10, save_cost_s=1.0),
        DrainingTrial("big1", unsaved_s=36, save_cost_s=4.0),
        DrainingTrial("big2", unsaved_s=36, save_cost_s=4.0),
    ]
    policy = EmergencyPolicy(poll_interval_s=0, min_margin_s=0, margin_fraction=0)
    plan = plan_emergency(trials, deadline=NOW + 4, now=NOW, policy=policy)
    assert plan.save_order == ("small", "big1")
    assert plan.saved_value == 46
    assert _best_value(trials, 4.0) == 72


def test_no_deadline_uses_the_default() -> None:
    # 30 s: margin 1 + max(3, 3) = 4 s, 26 s for saves. 0 is Ray's "no deadline" too.
    for deadline in (None, 0):
        assert EmergencyPolicy().budget_s(deadline, NOW) == pytest.approx(26.0)
    policy = EmergencyPolicy(default_deadline_s=100)
    assert policy.budget_s(None, NOW) == pytest.approx(100 - 1 - 10)  # 10%: 10 s > 3 s
    trials = [DrainingTrial(f"t{i}", unsaved_s=10, save_cost_s=10.0) for i in range(5)]
    plan = plan_emergency(trials, deadline=0, now=NOW)
    assert plan.save_order == ("t0", "t1", "t2", "t3")  # 2 lanes x 2 saves of 10 s in 26 s
    assert plan.stops == ("t4",)


def test_a_passed_deadline_saves_nothing() -> None:
    trials = [DrainingTrial("late", unsaved_s=100, save_cost_s=0.1)]
    plan = plan_emergency(trials, deadline=NOW - 5, now=NOW)
    assert plan.budget_s == 0
    assert plan.stops == ("late",)


def test_trials_with_nothing_unsaved_or_no_checkpoint_move_at_once() -> None:
    trials = [
        DrainingTrial("fresh", unsaved_s=0.2, has_unsaved=False, save_cost_s=1),
        DrainingTrial("nosave", unsaved_s=50, can_checkpoint=False, save_cost_s=1),
        DrainingTrial("work", unsaved_s=5, save_cost_s=1),
    ]
    plan = plan_emergency(trials, deadline=NOW + 60, now=NOW)
    assert plan.moves == ("fresh", "nosave")
    assert plan.save_order == ("work",)
    assert plan.action("fresh") is EmergencyAction.MOVE
    assert plan.action("nosave") is EmergencyAction.MOVE
    assert plan.lost_value == 50  # the trial that cannot checkpoint loses its work


def test_replanning_with_busy_lanes() -> None:
    trials = [DrainingTrial("a", unsaved_s=10, save_cost_s=2), DrainingTrial("b", 10, 1, 2)]
    policy = EmergencyPolicy(poll_interval_s=0, min_margin_s=0, margin_fraction=0)
    # Lane 0 busy for 3 s more, lane 1 for 1 s: of a 4 s budget only lane 1 has room.
    plan = plan_emergency(trials, NOW + 4, NOW, policy, lanes_free_in_s=(3.0, 1.0))
    assert plan.saves == (PlannedSave("a", 1, 1.0, 3.0),)
    assert plan.stops == ("b",)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"save_cost_s=0 is invalid"):
        DrainingTrial("t", unsaved_s=1, save_cost_s=0)
    with pytest.raises(ValueError, match=r"unsaved_s=-1 is invalid"):
        DrainingTrial("t", unsaved_s=-1)
    with pytest.raises(ValueError, match=r"weight=nan is invalid"):
        DrainingTrial("t", unsaved_s=1, weight=float("nan"))
    with pytest.raises(ValueError, match=r"lanes=0 is invalid"):
        EmergencyPolicy(lanes=0)
    with pytest.raises(ValueError, match=r"margin_fraction=1 is invalid"):
        EmergencyPolicy(margin_fraction=1)
    with pytest.raises(ValueError, match=r"trials=\['t', 't'\] is invalid: each trial once"):
        plan_emergency([DrainingTrial("t", 1), DrainingTrial("t", 2)], NOW + 10, NOW)


def test_save_cost_tracker() -> None:
    tracker = SaveCostTracker(alpha=0.5, default_s=7.0)
    assert tracker.estimate("a") == 7.0  # nobody saved yet
    tracker.record("a", 2.0)
    assert tracker.estimate("a") == 2.0
    tracker.record("a", 4.0)
    assert tracker.estimate("a") == 3.0  # 2 + 0.5 * (4 - 2)
    tracker.record("b", 5.0)
    assert tracker.estimate("new") == 4.0  # the mean of a (3) and b (5)
    tracker.forget("b")
    assert tracker.estimate("new") == 3.0
    with pytest.raises(ValueError, match=r"alpha=0 is invalid"):
        SaveCostTracker(alpha=0)
    with pytest.raises(ValueError, match=r"seconds=-1 is invalid"):
        tracker.record("a", -1)


def test_the_planner_does_not_import_ray() -> None:
    code = "import sys, tune_ckpt.driver.emergency; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
