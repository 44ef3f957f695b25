"""Tuner and results as Ray Tune has them: ``get_results()``, a function's return value,
the only result without a metric, and errors of the class the trainable raised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.air import session
from tune_ckpt.errors import ExperimentError, TrialError

from ._support import iterations, run_config


class BudgetExceeded(Exception):
    """A user's own exception class, with an __init__ that takes other arguments."""

    def __init__(self, spent: int, budget: int) -> None:
        super().__init__(f"spent {spent} of {budget}")


def returns_dict(config: dict[str, Any]) -> dict[str, Any]:
    for step in range(2):
        session.report({"loss": 10 - step})
    return {"loss": 1, "final": True}


def returns_number(config: dict[str, Any]) -> float:
    session.report({"loss": 5})
    return 0.25


def returns_nothing(config: dict[str, Any]) -> None:
    session.report({"loss": 5})


def raises(config: dict[str, Any]) -> None:
    session.report({"loss": 5})
    if config["kind"] == "zero":
        print(1 / 0)
    raise BudgetExceeded(12, 10)


def test_return_value_is_the_last_result(tmp_path: Path) -> None:
    """A returned dict is one more result, the last (done); a number is reported as
    ``_metric``; returning nothing adds no iteration."""
    result = tune.Tuner(returns_dict, run_config=run_config(tmp_path, name="d")).fit()[0]
    assert result.metrics["loss"] == 1 and result.metrics["final"] is True
    assert result.metrics["done"] is True
    assert iterations(result.path) == [1, 2, 3]
    number = tune.Tuner(returns_number, run_config=run_config(tmp_path, name="n")).fit()[0]
    assert number.metrics["_metric"] == 0.25
    assert iterations(number.path) == [1, 2]
    nothing = tune.Tuner(returns_nothing, run_config=run_config(tmp_path, name="x")).fit()[0]
    assert iterations(nothing.path) == [1]


def test_error_is_an_instance_of_the_raised_class(tmp_path: Path) -> None:
    """``Result.error`` is a TrialError and an instance of what the trainable raised (a
    builtin or the user's own class), its text the worker's traceback."""
    grid = tune.Tuner(
        raises,
        param_space={"kind": tune.grid_search(["zero", "budget"])},
        run_config=run_config(tmp_path),
    ).fit()
    zero, budget = grid[0].error, grid[1].error
    assert isinstance(zero, ZeroDivisionError) and isinstance(zero, TrialError)
    assert not isinstance(zero, BudgetExceeded)
    assert "division by zero" in str(zero) and "in raises" in str(zero)
    assert isinstance(budget, BudgetExceeded) and isinstance(budget, TrialError)
    assert "spent 12 of 10" in str(budget)
    with pytest.raises(ZeroDivisionError):
        raise zero
    assert [type(e) for e in grid.errors] == [type(zero), type(budget)]


def test_get_results_after_fit_and_after_restore(tmp_path: Path) -> None:
    """``get_results()`` returns what fit() returned; on a restored Tuner before fit() it
    reads the experiment's results from storage; the only result is the best one when no
    metric is set; restoring with another trainable is a ValueError, as in Ray Tune."""
    tuner = tune.Tuner(returns_dict, run_config=run_config(tmp_path))
    with pytest.raises(RuntimeError, match="fit"):
        tuner.get_results()
    fitted = tuner.fit()
    assert tuner.get_results() is fitted
    assert fitted.get_best_result() is fitted[0]
    restored = tune.Tuner.restore(str(tmp_path / "exp"), returns_dict)
    before = restored.get_results()
    assert before[0].metrics["final"] is True
    assert before[0].path == fitted[0].path
    assert before.get_best_result().config == fitted[0].config
    after = restored.fit()
    assert restored.get_results() is after
    assert after[0].metrics["final"] is True
    with pytest.raises(ValueError, match="was run with trainable") as info:
        tune.Tuner.restore(str(tmp_path / "exp"), returns_number)
    assert isinstance(info.value, ExperimentError)


def test_best_result_without_metric_among_several_still_raises(tmp_path: Path) -> None:
    grid = tune.Tuner(
        returns_number,
        param_space={"x": tune.grid_search([1, 2])},
        run_config=run_config(tmp_path),
    ).fit()
    with pytest.raises(ValueError, match="needs a metric"):
        grid.get_best_result()


class Converges(tune.Trainable):
    def step(self) -> dict[str, Any]:
        return {"converged": self.iteration + 1 >= self.config["at"]}


def test_stop_dict_with_true_stops_when_the_value_is_true(tmp_path: Path) -> None:
    """``stop={"converged": True, "training_iteration": 6}``, checked in the worker (batched
    steps) and the driver: each trial ends at the first true value or at the iteration cap."""
    grid = tune.Tuner(
        Converges,
        param_space={"at": tune.grid_search([3, 100])},
        run_config=run_config(tmp_path, stop={"converged": True, "training_iteration": 6}),
    ).fit()
    assert [iterations(r.path) for r in grid] == [[1, 2, 3], [1, 2, 3, 4, 5, 6]]
