"""Search algorithms driving real sweeps: trials created as the driver has room for them,
the searcher hearing every result and each trial's end once, concurrency limits, Optuna
with a scheduler, and ``tune.run`` taking both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.schedulers import ASHAScheduler
from tune_ckpt.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher
from tune_ckpt.search.optuna import OptunaSearch

pytestmark = pytest.mark.usefixtures("local_ray")

ITERATIONS = 4


def scored(config: dict[str, Any]) -> None:
    """Reports ``score = x * iteration`` for ITERATIONS iterations; fails when asked."""
    for iteration in range(1, ITERATIONS + 1):
        if config.get("fail_at") == iteration:
            raise ValueError("asked to fail")
        tune.report({"score": config["x"] * iteration})


class Recording(Searcher):
    """A user's searcher: x = 0, 1, 2, ... for ``count`` trials, recording what it hears."""

    def __init__(self, count: int, fail: int | None = None) -> None:
        super().__init__(metric="score", mode="max")
        self.count = count
        self.fail = fail
        self.suggested: list[str] = []
        self.results: dict[str, list[int]] = {}
        self.completed: list[tuple[str, float | None, bool]] = []
        self.most_live = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self.suggested) == self.count:
            return Searcher.FINISHED
        index = len(self.suggested)
        self.suggested.append(trial_id)
        live = len(self.suggested) - len(self.completed)
        self.most_live = max(self.most_live, live)
        return {"x": index, "fail_at": 2 if index == self.fail else None}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.results.setdefault(trial_id, []).append(result["training_iteration"])

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.completed.append((trial_id, (result or {}).get("score"), error))


def _tuner(tmp_path: Path, name: str, space: dict, **tune_kw: Any) -> tune.Tuner:
    return tune.Tuner(
        scored,
        param_space=space,
        tune_config=tune.TuneConfig(**tune_kw),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
    )


def test_a_users_searcher_hears_every_result_and_each_end_once(tmp_path: Path) -> None:
    """Trials are created one at a time as there is room (never more live than
    max_concurrent_trials); every result reaches the searcher, each end once, an ERROR
    with error=True; FINISHED ends the sweep."""
    searcher = Recording(count=5, fail=3)
    results = _tuner(
        tmp_path, "user", {}, search_alg=searcher, max_concurrent_trials=2, num_samples=100
    ).fit()

    assert len(results) == 5
    assert searcher.most_live <= 2
    assert sorted(r.config["x"] for r in results) == [0, 1, 2, 3, 4]
    for trial_id in searcher.suggested:
        wanted = [1] if trial_id == searcher.suggested[3] else list(range(1, ITERATIONS + 1))
        assert searcher.results[trial_id] == wanted
    assert sorted(t for t, _, _ in searcher.completed) == sorted(searcher.suggested)
    ends = {t: (score, error) for t, score, error in searcher.completed}
    assert ends[searcher.suggested[3]] == (3.0 * 1, True)
    assert ends[searcher.suggested[4]] == (4.0 * ITERATIONS, False)
    state = json.loads((tmp_path / "user" / "searcher_state.json").read_text())
    assert state["created"] == 5 and len(state["told_complete"]) == 5


def test_concurrency_limiter_holds_back_suggestions(tmp_path: Path) -> None:
    """ConcurrencyLimiter(max_concurrent=1) on a 2-CPU cluster: one trial at a time; the
    driver asks again after each end."""
    inner = Recording(count=3)
    limited = ConcurrencyLimiter(inner, max_concurrent=1)
    results = _tuner(tmp_path, "limited", {}, search_alg=limited, num_samples=3).fit()
    assert len(results) == 3
    assert inner.most_live == 1
    assert [r.metrics["score"] for r in results] == [0, ITERATIONS, 2 * ITERATIONS]


def test_optuna_with_asha_creates_trials_lazily(tmp_path: Path) -> None:
    """A seeded OptunaSearch and ASHA together: num_samples trials, each told to the study
    with its final score, never more than max_concurrent_trials suggested and unfinished;
    the param_space's constants reach every trial."""
    search = OptunaSearch(seed=1)
    asha = ASHAScheduler(max_t=ITERATIONS, grace_period=1, reduction_factor=2)
    space = {"x": tune.uniform(0, 1), "tag": "const"}
    results = _tuner(
        tmp_path,
        "optuna",
        space,
        search_alg=search,
        scheduler=asha,
        metric="score",
        mode="max",
        num_samples=6,
        max_concurrent_trials=2,
    ).fit()
    assert len(results) == 6
    assert all(r.error is None and r.config["tag"] == "const" for r in results)
    assert all(0 <= r.config["x"] <= 1 for r in results)
    study = search.study.trials
    assert len(study) == 6
    assert sorted(t.value for t in study) == sorted(r.metrics["score"] for r in results)
    assert sorted(t.params["x"] for t in study) == sorted(r.config["x"] for r in results)
    # ASHA stopped some before max_t.
    assert {r.metrics["training_iteration"] for r in results} != {ITERATIONS}


def test_explicit_basic_variant_generator_equals_the_default(tmp_path: Path) -> None:
    """BasicVariantGenerator passed as search_alg gives the trials the default gives: the
    same configs in the same order, with the same experiment tags."""
    space = {"x": tune.grid_search([3, 1, 2])}
    default = _tuner(tmp_path, "default", space).fit()
    explicit = _tuner(tmp_path, "explicit", space, search_alg=BasicVariantGenerator()).fit()

    def rows(grid: Any) -> list[tuple[Any, Any]]:
        return [(r.config, r.metrics["score"]) for r in grid]

    assert rows(explicit) == rows(default) == [({"x": x}, x * ITERATIONS) for x in [3, 1, 2]]
    tags = [
        sorted(json.loads(line)["experiment_tag"] for line in lines if '"trial"' in line)
        for lines in (
            (tmp_path / name / "experiment_journal.jsonl").read_text().splitlines()
            for name in ("default", "explicit")
        )
    ]
    assert set(tags[0]) == set(tags[1])


def test_run_takes_a_scheduler_and_a_search_alg(tmp_path: Path) -> None:
    """tune.run(scheduler=..., search_alg=...) as in Ray Tune."""
    analysis = tune.run(
        scored,
        config={"x": tune.uniform(0, 1)},
        search_alg=OptunaSearch(seed=0),
        scheduler=ASHAScheduler(max_t=ITERATIONS, grace_period=1),
        metric="score",
        mode="max",
        num_samples=3,
        storage_path=str(tmp_path),
        name="run",
        verbose=0,
    )
    assert len(analysis.trials) == 3
    assert 0 <= analysis.best_config["x"] <= 1
