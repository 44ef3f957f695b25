"""Evacuation bookkeeping without Ray: new drains, planned saves started two at a time per
node in priority order, lanes freed as trials leave."""

from __future__ import annotations

from tune_ckpt.driver.emergency import DrainingTrial, EmergencyAction
from tune_ckpt.driver.evacuation import Evacuation


def test_new_drains_are_reported_once_and_forgotten_when_gone() -> None:
    evacuation = Evacuation()
    assert evacuation.new_drains(["a", "b"]) == ["a", "b"]
    assert evacuation.new_drains(["a", "b"]) == []
    assert evacuation.new_drains(["b"]) == []
    assert evacuation.new_drains(["a", "b"]) == ["a"]  # drained again after it left


def test_saves_start_two_per_node_in_priority_order() -> None:
    """Four trials worth saving on one node, one with nothing unsaved: the saves start in
    value-per-cost order, two at a time; a finished save frees its lane for the next."""
    evacuation = Evacuation()
    trials = [
        DrainingTrial("low", unsaved_s=10, save_cost_s=1),
        DrainingTrial("high", unsaved_s=40, save_cost_s=1),
        DrainingTrial("mid", unsaved_s=20, save_cost_s=1),
        DrainingTrial("third", unsaved_s=15, save_cost_s=1),
        DrainingTrial("clean", unsaved_s=0, has_unsaved=False),
    ]
    plan = evacuation.plan("node", trials, deadline=1000.0, now=0.0)
    assert plan.action("clean") == EmergencyAction.MOVE
    assert all(evacuation.evacuating(t.trial_id) for t in trials)
    assert evacuation.startable() == ["high", "mid"]
    assert evacuation.startable() == []
    evacuation.forget("mid")
    assert evacuation.startable() == ["third"]
    evacuation.forget("low")  # left before its save started (failed): never started
    evacuation.forget("high")
    evacuation.forget("third")
    assert evacuation.startable() == []
    assert not evacuation.evacuating("high")
