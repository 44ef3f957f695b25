"""The driver's decisions without Ray: stop rules, what follows a failure, startup losses."""

from __future__ import annotations

import pytest

from tune_ckpt.config import FailureConfig
from tune_ckpt.driver.decisions import (
    MAX_STARTUP_LOSSES,
    AfterFailure,
    StartupLosses,
    StopKeyError,
    StopRule,
    after_failure,
)
from tune_ckpt.trial import Trial


def test_dict_stop_thresholds_nested_names_and_missing_keys() -> None:
    """A dict stops at the first threshold reached (nested names with '/'), gives the
    worker its thresholds, and names a metric the results lack."""
    rule = StopRule({"training_iteration": 3, "val/acc": 0.9})
    assert rule.thresholds == {"training_iteration": 3.0, "val/acc": 0.9}
    assert not rule.reached("t", {"training_iteration": 2, "val": {"acc": 0.5}})
    assert rule.reached("t", {"training_iteration": 2, "val": {"acc": 0.95}})
    assert rule.reached("t", {"training_iteration": 3, "val": {"acc": 0.1}})
    with pytest.raises(StopKeyError, match="'val/acc' is not a metric of trial t"):
        rule.reached("t", {"training_iteration": 1})


def test_callable_and_absent_stop() -> None:
    """A callable decides in the driver only (no thresholds); no stop never stops."""
    rule = StopRule(lambda trial_id, result: result["loss"] < 0.1)
    assert rule.thresholds is None
    assert rule.reached("t", {"loss": 0.05}) and not rule.reached("t", {"loss": 0.5})
    none = StopRule(None)
    assert none.thresholds == {} and not none.reached("t", {"x": 1})


@pytest.mark.parametrize(
    ("config", "failures", "expected"),
    [
        (FailureConfig(max_failures=2), 2, AfterFailure.RETRY),
        (FailureConfig(max_failures=2), 3, AfterFailure.ERROR),
        (FailureConfig(max_failures=-1), 100, AfterFailure.RETRY),
        (FailureConfig(max_failures=0), 1, AfterFailure.ERROR),
        (FailureConfig(fail_fast=True), 1, AfterFailure.STOP_SWEEP),
        (FailureConfig(fail_fast="raise"), 1, AfterFailure.RAISE),
    ],
)
def test_after_failure(config: FailureConfig, failures: int, expected: AfterFailure) -> None:
    """Retries while the budget allows; past it, ERROR, or fail_fast ends the sweep."""
    trial = Trial("t", {}, "fn_t")
    trial.num_failures = failures
    assert after_failure(trial, config) == expected


def test_startup_losses_are_forgiven_a_few_times_in_a_row() -> None:
    """Actors lost before they answered are the cluster's loss up to a bound; an answer
    starts the count again."""
    losses = StartupLosses()
    assert all(losses.forgive("t") for _ in range(MAX_STARTUP_LOSSES))
    assert not losses.forgive("t")
    losses.answered("t")
    assert losses.forgive("t")


def test_a_true_stop_value_stops_when_the_result_value_is_true() -> None:
    """Ray Tune's ``stop={"done": True, ...}``: True stops on a true value, in the driver's
    rule and in the worker's check (``stop_value_reached``); numbers stay thresholds."""
    from tune_ckpt.config import RunConfig, stop_value_reached

    stop = RunConfig(stop={"done": True, "training_iteration": 5}).stop
    rule = StopRule(stop)
    assert rule.thresholds == {"done": True, "training_iteration": 5.0}
    assert not rule.reached("t", {"done": False, "training_iteration": 1})
    assert rule.reached("t", {"done": True, "training_iteration": 1})
    assert rule.reached("t", {"done": False, "training_iteration": 5})
    assert stop_value_reached("yes", True) and not stop_value_reached(0, True)
    assert stop_value_reached(2.0, 2) and not stop_value_reached(1.9, 2)
