"""Tests for OptunaSearch: conversion of tune_ckpt spaces, learning, define-by-run,
several objectives and state that continues the same study."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import optuna
import pytest

from tune_ckpt.search import (
    ConcurrencyLimiter,
    SearcherStateError,
    SearchGenerator,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    quniform,
    randint,
    randn,
    uniform,
)
from tune_ckpt.search.optuna import OptunaSearch

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "x": uniform(-10, 10),
    "nested": {
        "q": quniform(0, 1, 0.25),
        "lr": loguniform(1e-4, 1e-1),
        "n": randint(0, 3),
        "ln": lograndint(1, 100),
        "qn": qrandint(0, 10, 5),
        "c": choice(["a", "b"]),
    },
}


def _quadratic(config: dict[str, Any]) -> float:
    return (config["x"] - 3) ** 2


def _rounds(generator: SearchGenerator, n: int, start: int = 0) -> list[dict[str, Any]]:
    configs = []
    for i in range(start, start + n):
        config = generator.next_config(f"t{i}")
        assert config is not None
        generator.on_trial_result(f"t{i}", {"loss": _quadratic(config), "training_iteration": 1})
        generator.on_trial_complete(f"t{i}", {"loss": _quadratic(config)})
        configs.append(config)
    return configs


def test_suggestions_stay_in_the_converted_space() -> None:
    """Every kind of tune_ckpt domain converts; suggestions are nested like the space, within
    its bounds (randint's upper bound exclusive, qrandint's inclusive), constants kept."""
    searcher = OptunaSearch(metric="loss", mode="min", seed=1)
    generator = SearchGenerator(searcher, {**SPACE, "const": 7}, num_samples=40)
    for config in _rounds(generator, 40):
        nested = config["nested"]
        assert -10 <= config["x"] <= 10 and config["const"] == 7
        assert nested["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert 1e-4 <= nested["lr"] <= 1e-1
        assert nested["n"] in (0, 1, 2) and 1 <= nested["ln"] <= 99
        assert nested["qn"] in (0, 5, 10) and nested["c"] in ("a", "b")


def test_tpe_learns_a_quadratic() -> None:
    """Seeded TPE gets within 0.3 of the optimum of (x-3)^2 in 30 rounds."""
    searcher = OptunaSearch(metric="loss", mode="min", sampler=optuna.samplers.TPESampler(seed=0))
    generator = SearchGenerator(searcher, {"x": uniform(-10, 10)}, num_samples=30)
    configs = _rounds(generator, 30)
    assert min(abs(c["x"] - 3) for c in configs) < 0.3
    assert searcher.study.best_value == min(_quadratic(c) for c in configs)


def test_same_seed_same_suggestions_and_mode_max() -> None:
    """The seed fixes the suggestions; mode="max" makes the study maximise."""
    first = [OptunaSearch({"x": uniform(0, 1)}, metric="m", mode="max", seed=3) for _ in range(2)]
    assert first[0].suggest("a") == first[1].suggest("a")
    assert first[0].study.direction == optuna.study.StudyDirection.MAXIMIZE


def test_define_by_run_space() -> None:
    """A define-by-run function's suggest_* values and returned constants make the config;
    conditional parameters appear only when chosen."""

    def space(trial: Any) -> dict[str, Any]:
        kind = trial.suggest_categorical("kind", ["linear", "mlp"])
        if kind == "mlp":
            trial.suggest_int("net/width", 8, 64, log=True)
        return {"fixed": 1}

    searcher = OptunaSearch(space, metric="loss", mode="min", seed=0)
    seen = set()
    for i in range(20):
        config = searcher.suggest(str(i))
        assert config is not None and config["fixed"] == 1
        if config["kind"] == "mlp":
            assert 8 <= config["net"]["width"] <= 64
        else:
            assert "net" not in config
        seen.add(config["kind"])
        searcher.on_trial_complete(str(i), {"loss": 1.0})
    assert seen == {"linear", "mlp"}


def test_multi_objective() -> None:
    """Two metrics with a list of modes: the study has both directions and each trial's two
    values, in metric order; Pareto-best trials exist."""
    searcher = OptunaSearch(
        {"a": uniform(0, 1)}, metric=["loss1", "val/acc"], mode=["min", "max"], seed=0
    )
    for i in range(12):
        config = searcher.suggest(str(i))
        assert config is not None
        searcher.on_trial_result(str(i), {"loss1": 1.0, "training_iteration": 1})  # ignored
        searcher.on_trial_complete(str(i), {"loss1": config["a"], "val": {"acc": config["a"] ** 2}})
    study = searcher.study
    assert study.directions == [
        optuna.study.StudyDirection.MINIMIZE,
        optuna.study.StudyDirection.MAXIMIZE,
    ]
    assert all(t.values == [t.params["a"], t.params["a"] ** 2] for t in study.trials)
    assert study.best_trials


def test_points_to_evaluate_and_evaluated_rewards() -> None:
    """points_to_evaluate are suggested first; with evaluated_rewards they are told, not run."""
    searcher = OptunaSearch(
        {"x": uniform(0, 10), "o": {"y": randint(0, 5)}},
        metric="loss",
        mode="min",
        points_to_evaluate=[{"x": 1.5, "o": {"y": 2}}],
    )
    assert searcher.suggest("a") == {"x": 1.5, "o": {"y": 2}}
    told = OptunaSearch(
        {"x": uniform(0, 10)},
        metric="loss",
        mode="min",
        points_to_evaluate=[{"x": 2.0}, {"x": 4.0}],
        evaluated_rewards=[0.5, 0.25],
    )
    told.suggest("a")
    complete = [t for t in told.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [(t.params["x"], t.value) for t in complete] == [(2.0, 0.5), (4.0, 0.25)]


def test_errors_fail_and_missing_metric_prunes() -> None:
    """A trial that errored without the metric is FAIL; one that ended without it PRUNED."""
    searcher = OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min", seed=0)
    searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("a", None, error=True)
    searcher.on_trial_complete("b", {"other": 1})
    states = [t.state for t in searcher.study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED]


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        ({"x": randn(0, 1)}, "no distribution for Normal"),
        ({"x": qlograndint(1, 100, 2)}, "log-scale integers with a step"),
        ({"x": grid_search([1, 2])}, "grid_search"),
        ({"l": [uniform(0, 1)]}, "inside a list"),
    ],
)
def test_unconvertible_spaces_are_named(space: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        SearchGenerator(OptunaSearch(metric="loss", mode="min"), space)


def test_qloguniform_converts_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        OptunaSearch({"x": qloguniform(0.1, 10, 0.1)}, metric="loss", mode="min")
    assert "cannot quantize" in caplog.text


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="sampler="):
        OptunaSearch(sampler="tpe")
    with pytest.raises(ValueError, match="evaluated_rewards"):
        OptunaSearch(points_to_evaluate=[{"x": 1}], evaluated_rewards=[1, 2])
    with pytest.raises(ValueError, match="mode='best'"):
        OptunaSearch(metric="loss", mode="best")
    with pytest.raises(RuntimeError, match="no search space"):
        OptunaSearch(metric="loss", mode="min").suggest("a")


@pytest.mark.parametrize("define_by_run", [False, True])
def test_state_round_trip_continues_the_same_study(define_by_run: bool) -> None:
    """After 12 rounds (one trial still running), get_state through JSON into a new
    searcher: it finishes the running trial and then suggests what an uninterrupted
    searcher with the same seed suggests."""

    def by_run(trial: Any) -> None:
        trial.suggest_float("x", -10, 10)

    def make() -> SearchGenerator:
        sampler = optuna.samplers.TPESampler(seed=7, n_startup_trials=5)
        space = by_run if define_by_run else {"x": uniform(-10, 10)}
        searcher = OptunaSearch(
            space if define_by_run else None, metric="loss", mode="min", sampler=sampler
        )
        wrapped = ConcurrencyLimiter(searcher, max_concurrent=4)
        return SearchGenerator(wrapped, {} if define_by_run else space, num_samples=20)

    whole = make()
    _rounds(whole, 12)
    running = whole.next_config("t12")
    assert running is not None
    state = json.loads(json.dumps(whole.get_state()))

    resumed = make()
    resumed.set_state(state)
    for generator in (whole, resumed):
        generator.on_trial_complete("t12", {"loss": _quadratic(running)})
    assert _rounds(resumed, 7, start=13) == _rounds(whole, 7, start=13)
    assert resumed.is_finished() and whole.is_finished()


def test_state_that_does_not_load_is_a_clear_error() -> None:
    """A damaged pickle names the optuna version it was saved with."""
    searcher = OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min")
    searcher.suggest("a")
    state = searcher.get_state()
    state["optuna_version"] = "2.0.0"
    state["pickle"] = base64.b64encode(b"not a pickle").decode()
    with pytest.raises(SearcherStateError, match=r"saved with optuna 2\.0\.0"):
        OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min").set_state(state)
