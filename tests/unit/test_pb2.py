"""PB2: PBT's exploits with a GP bandit choosing the clone's hyperparameters (pure, no Ray).

The population below trains on a synthetic problem whose reward grows per step at
``rate(lr)``, best at ``lr = 0.75``; exploits are applied as the driver applies them (the
clone takes the donor's reward, its "weights", and the new config).
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

import pytest
import sklearn  # noqa: F401  # the pb2 extra, part of the test extra: fail, never skip, without it

from tune_ckpt.schedulers import PB2, Exploit, PopulationBasedTraining, TrialsView
from tune_ckpt.schedulers.pb2 import require_gp_libraries
from tune_ckpt.trial import Trial

from .sched_helpers import make_trials

BEST_LR = 0.75


def rate(lr: float) -> float:
    return 1.0 - 4.0 * (lr - BEST_LR) ** 2


def _pb2(**kwargs: Any) -> PB2:
    args: dict[str, Any] = dict(
        time_attr="training_iteration",
        metric="reward",
        mode="max",
        perturbation_interval=1,
        hyperparam_bounds={"lr": [0.0, 1.0]},
        seed=0,
    )
    args.update(kwargs)
    return PB2(**args)


class Population:
    """Trials with a reward each, stepped together; exploits applied."""

    def __init__(self, pb2: PB2, configs: list[dict[str, Any]]) -> None:
        self.pb2 = pb2
        self.trials = make_trials(len(configs))
        self.view = TrialsView(self.trials)
        for trial, config in zip(self.trials, configs, strict=True):
            trial.config = config
            pb2.on_trial_add(self.view, trial)
        self.reward = {t.trial_id: 0.0 for t in self.trials}
        self.exploits: list[tuple[int, Exploit]] = []

    def step(self, iteration: int) -> None:
        by_id = {t.trial_id: t for t in self.trials}
        for trial in self.trials:
            self.reward[trial.trial_id] += rate(_lr(trial))
            trial.last_result = {
                "training_iteration": iteration,
                "reward": self.reward[trial.trial_id],
            }
            self.pb2.on_trial_result(self.view, trial, dict(trial.last_result))
            for action in self.pb2.pop_actions():
                if isinstance(action, Exploit):
                    target = by_id[action.trial_id]
                    target.config = action.new_config
                    self.reward[target.trial_id] = self.reward[action.donor_id]
                    self.exploits.append((iteration, action))


def _lr(trial: Trial) -> float:
    return float(trial.config["lr"])


def _spread(count: int = 8) -> list[dict[str, Any]]:
    return [{"lr": (i + 0.5) / count} for i in range(count)]


def test_pb2_is_a_population_based_training_with_ray_s_arguments() -> None:
    pb2 = PB2(
        time_attr="training_iteration",
        metric="reward",
        mode="max",
        perturbation_interval=2,
        hyperparam_bounds={"lr": [1e-4, 1e-1]},
        quantile_fraction=0.5,
        log_config=False,
        require_attrs=False,
        synch=True,
        custom_explore_fn=None,
    )
    assert isinstance(pb2, PopulationBasedTraining)
    assert not pb2.log_config


def test_the_bandit_moves_clones_to_the_better_region() -> None:
    population = Population(_pb2(), _spread())
    for iteration in range(1, 9):
        population.step(iteration)
    chosen = [_lr_of(e) for it, e in population.exploits if it >= 4]
    assert len(chosen) >= 3
    # Uniform draws would be 0.31 from the best value on average.
    assert statistics.median(abs(lr - BEST_LR) for lr in chosen) < 0.12, chosen
    # The population ends better than it started, and near the best value.
    assert statistics.median(_lr(t) for t in population.trials) == pytest.approx(BEST_LR, abs=0.1)


def _lr_of(exploit: Exploit) -> float:
    return float(exploit.new_config["lr"])


def test_bounds_hold_for_every_choice_and_ints_stay_ints() -> None:
    bounds = {"lr": [0.2, 0.6], "model": {"layers": [1, 4]}}
    configs = [{"lr": 0.2 + 0.05 * i, "model": {"layers": 1 + i % 4}} for i in range(8)]
    population = Population(_pb2(hyperparam_bounds=bounds, seed=3), configs)
    for iteration in range(1, 6):
        population.step(iteration)
    chosen = [e.new_config for it, e in population.exploits if it >= 2]
    assert chosen
    for config in chosen:
        assert 0.2 <= config["lr"] <= 0.6
        layers = config["model"]["layers"]
        assert isinstance(layers, int) and 1 <= layers <= 4


def test_missing_keys_are_drawn_uniformly_within_their_bounds() -> None:
    pb2 = _pb2(hyperparam_bounds={"lr": [0.1, 0.2], "opt": {"momentum": [0.5, 0.9]}})
    trials = make_trials(20)
    view = TrialsView(trials)
    for trial in trials:
        trial.config = {"other": 1}
        pb2.on_trial_add(view, trial)
    lrs = [t.config["lr"] for t in trials]
    assert all(0.1 <= lr <= 0.2 for lr in lrs) and len(set(lrs)) == 20
    assert all(0.5 <= t.config["opt"]["momentum"] <= 0.9 for t in trials)
    assert all(t.config["other"] == 1 for t in trials)


def test_without_reward_changes_the_clone_keeps_the_donor_s_config() -> None:
    # At the first perturbation point no trial has two points yet: nothing to learn from,
    # so the clone continues with the donor's values (Ray's behaviour).
    population = Population(_pb2(), [{"lr": 0.75}, {"lr": 0.6}, {"lr": 0.5}, {"lr": 0.05}])
    population.step(1)
    assert population.exploits
    for _, exploit in population.exploits:
        assert exploit.new_config == exploit.policy[4]  # the donor's config then


def test_custom_explore_fn_sees_the_bandit_s_config() -> None:
    seen: list[float] = []

    def explore(config: dict[str, Any]) -> dict[str, Any]:
        seen.append(config["lr"])
        return {**config, "tag": "explored"}

    population = Population(_pb2(custom_explore_fn=explore), _spread(4))
    for iteration in range(1, 4):
        population.step(iteration)
    assert population.exploits and seen
    assert all(e.new_config["tag"] == "explored" for _, e in population.exploits)
    assert [_lr_of(e) for _, e in population.exploits] == seen


def test_state_round_trip_continues_with_the_same_choices() -> None:
    original = Population(_pb2(), _spread())
    for iteration in range(1, 4):
        original.step(iteration)
    state = json.loads(json.dumps(original.pb2.save_state()))  # what the driver persists
    assert state["scheduler"] == "PB2" and state["pb2"]["observations"]
    restored_pb2 = _pb2()
    restored_pb2.restore_state(state)
    assert restored_pb2.save_state() == state
    restored = Population(restored_pb2, [dict(t.config) for t in original.trials])
    restored.reward = dict(original.reward)
    assert restored_pb2.pop_actions() == []  # adding the trials again drew nothing
    before = len(original.exploits)
    for iteration in range(4, 7):
        original.step(iteration)
        restored.step(iteration)
    assert [e.new_config for _, e in original.exploits[before:]] == [
        e.new_config for _, e in restored.exploits
    ]
    assert len(restored.exploits) >= 2


@pytest.mark.parametrize(
    ("bounds", "named"),
    [
        (None, "hyperparam_bounds=None"),
        ({}, "hyperparam_bounds={}"),
        ({"lr": [0.1]}, "hyperparam_bounds['lr']=[0.1]"),
        ({"lr": [0.2, 0.1]}, "hyperparam_bounds['lr']=[0.2, 0.1]"),
        ({"lr": "0.1,0.2"}, "hyperparam_bounds['lr']='0.1,0.2'"),
        ({"lr": [True, 2]}, "hyperparam_bounds['lr']=[True, 2]"),
        ({"opt": {"momentum": [0, float("inf")]}}, "hyperparam_bounds['opt']['momentum']"),
        ({"opt": {}}, "hyperparam_bounds['opt']={}"),
    ],
)
def test_bad_bounds_are_refused_at_construction_naming_the_key(bounds: Any, named: str) -> None:
    with pytest.raises(ValueError, match="invalid") as info:
        _pb2(hyperparam_bounds=bounds)
    assert named in str(info.value)


def test_a_non_numeric_bounded_value_is_named_with_its_trial() -> None:
    pb2 = _pb2()
    trials = make_trials(1)
    trials[0].config = {"lr": "fast"}
    with pytest.raises(ValueError, match=r"trial t0's config\['lr'\]='fast'"):
        pb2.on_trial_add(TrialsView(trials), trials[0])


def test_missing_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.gaussian_process", None)  # import fails
    with pytest.raises(ImportError, match=r"tune_ckpt\[pb2\]"):
        require_gp_libraries()
    with pytest.raises(ImportError, match="scikit-learn"):
        _pb2()
