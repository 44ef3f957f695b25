"""PopulationBasedTraining's decisions and actions, explore with a seeded generator."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tune_ckpt.records import CheckpointRecord
from tune_ckpt.schedulers import (
    Exploit,
    PopulationBasedTraining,
    SaveCheckpoint,
    SchedulerDecision,
    TrialsView,
)
from tune_ckpt.schedulers.pbt_explore import explore, policy_line, policy_log_name
from tune_ckpt.search import uniform
from tune_ckpt.trial import Trial, TrialStatus

from .sched_helpers import make_trials

C, P, N = SchedulerDecision.CONTINUE, SchedulerDecision.PAUSE, SchedulerDecision.NOOP


def _pbt(**kwargs: Any) -> PopulationBasedTraining:
    args: dict[str, Any] = dict(
        time_attr="training_iteration",
        metric="acc",
        mode="max",
        perturbation_interval=4,
        hyperparam_mutations={"lr": [1, 2, 3]},
        seed=7,
    )
    args.update(kwargs)
    return PopulationBasedTraining(**args)


def _setup(pbt: PopulationBasedTraining, count: int) -> tuple[TrialsView, list[Trial]]:
    trials = make_trials(count)
    view = TrialsView(trials)
    for trial in trials:
        trial.config = {"lr": 2}
        pbt.on_trial_add(view, trial)
    return view, trials


def _report(pbt: PopulationBasedTraining, view: TrialsView, trial: Trial, t: int, acc: float):
    trial.last_result = {"training_iteration": t, "acc": acc}
    return pbt.on_trial_result(view, trial, dict(trial.last_result))


def test_top_trials_checkpoint_and_bottom_trials_exploit_them() -> None:
    pbt = _pbt()
    view, (a, b) = _setup(pbt, 2)
    assert _report(pbt, view, a, 3, 10) == C  # before the interval
    assert _report(pbt, view, a, 4, 10) == C  # alone: no quantiles yet
    assert pbt.pop_actions() == []
    record = CheckpointRecord(path="t0/checkpoint_000004", iteration=4, manifest_digest="d")
    a.checkpoints.append(record)
    assert _report(pbt, view, b, 4, 5) == N
    (exploit,) = pbt.pop_actions()
    assert isinstance(exploit, Exploit)
    assert (exploit.trial_id, exploit.donor_id) == ("t1", "t0")
    assert exploit.donor_checkpoint == record and not exploit.pause
    assert exploit.new_config["lr"] in (1, 2, 3)
    assert exploit.policy == ["t1", "t0", 4, 4, {"lr": 2}, exploit.new_config]
    # The top trial is asked for a checkpoint at its next perturbation point.
    assert _report(pbt, view, a, 8, 20) == C
    assert pbt.pop_actions() == [SaveCheckpoint("t0")]


def test_a_donor_without_a_checkpoint_since_its_perturbation_point_gives_none() -> None:
    pbt = _pbt()
    view, (a, b) = _setup(pbt, 2)
    a.checkpoints.append(CheckpointRecord(path="t0/checkpoint_000002", iteration=2))
    _report(pbt, view, a, 4, 10)
    _report(pbt, view, b, 4, 5)
    (exploit,) = pbt.pop_actions()
    assert isinstance(exploit, Exploit) and exploit.donor_checkpoint is None


def test_waiting_trials_make_perturbed_trials_pause_and_exploits_wait() -> None:
    pbt = _pbt()
    view, (a, b, c) = _setup(pbt, 3)
    c.set_status(TrialStatus.PAUSED)
    assert _report(pbt, view, a, 4, 10) == P
    assert _report(pbt, view, b, 4, 5) == N
    (exploit,) = pbt.pop_actions()
    assert isinstance(exploit, Exploit) and exploit.pause


def test_quantiles_of_eight_are_two_and_two() -> None:
    pbt = _pbt()
    view, trials = _setup(pbt, 8)
    for index, trial in enumerate(trials):
        _report(pbt, view, trial, 4, index)
    lower, upper = pbt._quantiles(trials)
    assert [t.trial_id for t in lower] == ["t0", "t1"]
    assert [t.trial_id for t in upper] == ["t6", "t7"]


def test_burn_in_delays_the_first_perturbation() -> None:
    pbt = _pbt(burn_in_period=6)
    view, (a, b) = _setup(pbt, 2)
    a.checkpoints.append(CheckpointRecord(path="t0/checkpoint_000006", iteration=6))
    _report(pbt, view, a, 5, 10)
    assert _report(pbt, view, b, 5, 1) == C  # 5 >= interval, but inside the burn-in
    _report(pbt, view, a, 6, 10)
    assert _report(pbt, view, b, 6, 1) == N


def _pause_at(trial: Trial, iteration: int) -> None:
    """What the driver does on PAUSE: the trial is PAUSED, then its checkpoint commits."""
    trial.set_status(TrialStatus.PAUSED)
    trial.checkpoints.append(
        CheckpointRecord(path=f"{trial.trial_id}/checkpoint_{iteration:06d}", iteration=iteration)
    )


def test_synch_pauses_until_the_whole_population_reached_the_point() -> None:
    pbt = _pbt(synch=True)
    view, (a, b, c) = _setup(pbt, 3)
    assert _report(pbt, view, a, 4, 10) == P
    _pause_at(a, 4)
    assert pbt.choose_trial_to_run(view) is None  # a waits at the point for the others
    assert _report(pbt, view, b, 4, 5) == P
    _pause_at(b, 4)
    # The last one arrives: it pauses too; nothing is decided before its checkpoint commits.
    assert _report(pbt, view, c, 4, 1) == P
    c.set_status(TrialStatus.PAUSED)
    # Not at the point with a checkpoint yet: chosen (the driver skips it while its pause
    # save runs), and no decision.
    assert pbt.choose_trial_to_run(view) is c
    assert pbt.pop_actions() == []
    c.checkpoints.append(CheckpointRecord(path="t2/checkpoint_000004", iteration=4))
    # All paused at the point with their checkpoints: one top (t0) and one bottom (t2).
    assert pbt.choose_trial_to_run(view) is a  # everyone is below 8 now; least trained first
    actions = pbt.pop_actions()
    assert len(actions) == 1 and isinstance(actions[0], Exploit)
    assert (actions[0].trial_id, actions[0].donor_id) == ("t2", "t0") and actions[0].pause
    assert actions[0].donor_checkpoint == a.checkpoints[-1]  # known at the decision
    assert pbt.save_state()["next_perturbation_sync"] == 8


def test_synch_decisions_do_not_depend_on_the_order_of_arrival() -> None:
    """The same scores reached in another order give the same exploits and configs."""
    outcomes = []
    for order in ([0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]):
        pbt = _pbt(synch=True, quantile_fraction=0.5, seed=5)
        view, trials = _setup(pbt, 4)
        for index in order:
            _report(pbt, view, trials[index], 4, [3.0, 1.0, 4.0, 2.0][index])
            _pause_at(trials[index], 4)
        pbt.choose_trial_to_run(view)
        outcomes.append(
            [
                (x.trial_id, x.donor_id, x.new_config)
                for x in pbt.pop_actions()
                if isinstance(x, Exploit)
            ]
        )
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert sorted(t for t, _, _ in outcomes[0]) == ["t1", "t3"]


def test_explore_replays_the_generator() -> None:
    rng = random.Random(3)
    new, ops = explore(
        {"lr": 2, "w": 10, "u": 0.5},
        {"lr": [1, 2, 3], "w": lambda: 1, "u": uniform(0, 1)},
        0.0,
        (1.2, 0.8),
        None,
        rng,
    )
    expect = random.Random(3)
    expect.random()
    shift = expect.choice([-1, 1])
    expect.random()
    w_factor = expect.choice([1.2, 0.8])
    expect.random()
    u_factor = expect.choice([1.2, 0.8])
    assert new["lr"] == [1, 2, 3][1 + shift]
    assert new["w"] == int(10 * w_factor) and isinstance(new["w"], int)
    assert new["u"] == 0.5 * u_factor
    assert ops["w"] == f"* {w_factor}"


def test_explore_resamples_values_outside_the_list_and_from_domains() -> None:
    new, ops = explore(
        {"lr": 7, "u": 0.5},
        {"lr": [1, 2], "u": uniform(0, 1)},
        1.0,
        (1.2,),
        lambda c: {**c, "extra": True},
        random.Random(0),
    )
    assert new["lr"] in (1, 2) and ops == {"lr": "resample", "u": "resample"}
    assert 0 <= new["u"] <= 1 and new["extra"] is True


def test_missing_keys_are_drawn_when_trials_join() -> None:
    pbt = _pbt(hyperparam_mutations={"lr": [1, 2, 3], "opt": {"m": uniform(0, 1)}})
    trial = make_trials(1)[0]
    pbt.on_trial_add(TrialsView([trial]), trial)
    assert trial.config["lr"] in (1, 2, 3) and 0 <= trial.config["opt"]["m"] <= 1


def test_missing_attributes_raise_unless_allowed() -> None:
    pbt = _pbt()
    view, (a,) = _setup(pbt, 1)
    with pytest.raises(RuntimeError, match="'acc'"):
        pbt.on_trial_result(view, a, {"training_iteration": 4})
    lenient = _pbt(require_attrs=False)
    view, (a,) = _setup(lenient, 1)
    assert lenient.on_trial_result(view, a, {"training_iteration": 4}) == C


def test_state_round_trip_makes_the_same_next_decisions() -> None:
    def run(restore_midway: bool) -> list[Any]:
        pbt = _pbt(hyperparam_mutations={"lr": uniform(0, 1)}, resample_probability=0.5)
        view, trials = _setup(pbt, 4)
        for trial in trials:
            trial.config = {"lr": 0.5}
            trial.checkpoints.append(CheckpointRecord(path=f"{trial.trial_id}/c", iteration=99))
        seen: list[Any] = []
        for step in (4, 8, 12):
            if restore_midway and step == 8:
                state = json.loads(json.dumps(pbt.save_state()))
                pbt = _pbt(hyperparam_mutations={"lr": uniform(0, 1)}, resample_probability=0.5)
                pbt.restore_state(state)
            for index, trial in enumerate(trials):
                seen.append(_report(pbt, view, trial, step, (index * 7 + step) % 5))
                seen.extend(pbt.pop_actions())
        return seen

    assert run(False) == run(True)
    assert any(isinstance(a, Exploit) for a in run(False))


def test_policy_lines_are_ray_s_json_records() -> None:
    assert policy_line(["t1", "t0", 4, 4, {"lr": 2}, {"lr": 3}]) == (
        '["t1", "t0", 4, 4, {"lr": 2}, {"lr": 3}]\n'
    )
    assert policy_log_name("t1") == "pbt_policy_t1.txt"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"hyperparam_mutations": None}, "hyperparam_mutations=None"),
        ({"quantile_fraction": 0.6}, "quantile_fraction=0.6"),
        ({"perturbation_interval": 0}, "perturbation_interval=0"),
        ({"hyperparam_mutations": {"lr": 3}}, r"hyperparam_mutations\['lr'\]=3"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        _pbt(**kwargs)


def test_synch_runs_a_trial_restored_from_before_the_point_it_had_reached() -> None:
    """After a driver crash, the saved state may say a trial reached the point while the
    trial restored from an older checkpoint: it is chosen to run there again, and the
    population waits for it."""
    pbt = _pbt(synch=True)
    view, (a, b) = _setup(pbt, 2)
    _report(pbt, view, a, 4, 10)
    _pause_at(a, 4)
    _report(pbt, view, b, 4, 5)  # heard, but its checkpoint of 4 was never committed
    b.set_status(TrialStatus.PAUSED)
    b.checkpoints.append(CheckpointRecord(path="t1/checkpoint_000002", iteration=2))
    assert pbt.choose_trial_to_run(view) is b
    assert pbt.pop_actions() == []
