"""Tests for tune_ckpt.config: every validation names the field and the bad value."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pyarrow.fs as pafs
import pytest

from tune_ckpt.config import (
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    StorageRetry,
    TuneConfig,
    Verbosity,
)


def raises_naming(field: str, value: Any) -> Any:
    """pytest.raises(ValueError) whose message names ``field=<repr(value)>``."""
    return pytest.raises(ValueError, match=re.escape(f"{field}={value!r}"))


# -- CheckpointConfig -------------------------------------------------------------------------


def test_checkpoint_config_defaults_keep_everything() -> None:
    """The default CheckpointConfig keeps all checkpoints, ranks by max and never auto-saves."""
    config = CheckpointConfig()
    assert config.num_to_keep is None
    assert config.checkpoint_score_attribute is None
    assert config.checkpoint_score_order == "max"
    assert config.checkpoint_frequency == 0
    assert config.checkpoint_at_end is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True, False])
def test_num_to_keep_must_be_positive_int(value: Any) -> None:
    """num_to_keep below 1, non-int or bool is rejected, naming field and value."""
    with raises_naming("num_to_keep", value):
        CheckpointConfig(num_to_keep=value)


@pytest.mark.parametrize("value", [1, 5])
def test_num_to_keep_accepts_positive_ints(value: int) -> None:
    """num_to_keep accepts ints >= 1."""
    assert CheckpointConfig(num_to_keep=value).num_to_keep == value


@pytest.mark.parametrize("value", ["maximum", "MAX", "", None, "asc"])
def test_checkpoint_score_order_must_be_max_or_min(value: Any) -> None:
    """checkpoint_score_order other than "max"/"min" is rejected."""
    with raises_naming("checkpoint_score_order", value):
        CheckpointConfig(checkpoint_score_order=value)


def test_checkpoint_score_order_min_accepted() -> None:
    """checkpoint_score_order="min" is valid."""
    assert CheckpointConfig(checkpoint_score_order="min").checkpoint_score_order == "min"


@pytest.mark.parametrize("value", [-1, -10, 2.0, True, "1"])
def test_checkpoint_frequency_must_be_non_negative_int(value: Any) -> None:
    """checkpoint_frequency below 0, non-int or bool is rejected."""
    with raises_naming("checkpoint_frequency", value):
        CheckpointConfig(checkpoint_frequency=value)


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_checkpoint_at_end_must_be_bool_or_none(value: Any) -> None:
    """checkpoint_at_end must be True, False or None."""
    with raises_naming("checkpoint_at_end", value):
        CheckpointConfig(checkpoint_at_end=value)


@pytest.mark.parametrize("value", ["", "/", "//", 5])
def test_checkpoint_score_attribute_must_be_a_name(value: Any) -> None:
    """checkpoint_score_attribute must be a non-empty metric name."""
    with raises_naming("checkpoint_score_attribute", value):
        CheckpointConfig(checkpoint_score_attribute=value)


def test_checkpoint_config_is_frozen() -> None:
    """CheckpointConfig cannot be mutated after validation."""
    config = CheckpointConfig(num_to_keep=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_to_keep = 0  # type: ignore[misc]


# -- FailureConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-2, -100, 1.0, True, "1", None])
def test_max_failures_must_be_int_at_least_minus_one(value: Any) -> None:
    """max_failures below -1, non-int or bool is rejected."""
    with raises_naming("max_failures", value):
        FailureConfig(max_failures=value)


@pytest.mark.parametrize("value", [-1, 0, 3])
def test_max_failures_accepts_minus_one_and_up(value: int) -> None:
    """max_failures=-1 (unlimited), 0 and positive ints are valid."""
    assert FailureConfig(max_failures=value).max_failures == value


@pytest.mark.parametrize("max_failures", [1, 5, -1])
@pytest.mark.parametrize("fail_fast", [True, "raise"])
def test_fail_fast_needs_zero_max_failures(fail_fast: Any, max_failures: int) -> None:
    """fail_fast with max_failures != 0 is rejected, naming both fields and values."""
    with pytest.raises(ValueError) as info:
        FailureConfig(max_failures=max_failures, fail_fast=fail_fast)
    message = str(info.value)
    assert f"fail_fast={fail_fast!r}" in message
    assert f"max_failures={max_failures!r}" in message


@pytest.mark.parametrize("fail_fast", [True, False, "raise"])
def test_fail_fast_values_accepted_with_zero_failures(fail_fast: Any) -> None:
    """fail_fast True, False and "raise" are valid with max_failures=0."""
    assert FailureConfig(fail_fast=fail_fast).fail_fast == fail_fast


@pytest.mark.parametrize("value", ["yes", "RAISE", None, 2])
def test_fail_fast_rejects_other_values(value: Any) -> None:
    """fail_fast other than True, False or "raise" is rejected."""
    with raises_naming("fail_fast", value):
        FailureConfig(fail_fast=value)


def test_max_failures_unlimited_without_fail_fast() -> None:
    """max_failures=-1 combines with fail_fast=False."""
    config = FailureConfig(max_failures=-1, fail_fast=False)
    assert (config.max_failures, config.fail_fast) == (-1, False)


@pytest.mark.parametrize("value", [0.5, 3, 60.0, None])
def test_node_silence_accepts_positive_seconds_or_none(value: Any) -> None:
    assert FailureConfig(node_silence_s=value).node_silence_s == value


@pytest.mark.parametrize("value", [0, -3.0, float("nan"), "3", True])
def test_node_silence_rejects_other_values(value: Any) -> None:
    with raises_naming("node_silence_s", value):
        FailureConfig(node_silence_s=value)


def test_node_silence_is_kept_with_the_experiment(tmp_path: Any) -> None:
    """Tuner.restore runs with the node silence the experiment started with; an
    experiment saved before the setting existed gets the default."""
    from tune_ckpt.experiment_settings import experiment_settings, restored_settings
    from tune_ckpt.storage import StorageLocation

    experiment = StorageLocation.resolve(str(tmp_path))
    run_config = RunConfig(failure_config=FailureConfig(max_failures=2, node_silence_s=None))
    header = experiment_settings(run_config, TuneConfig(), {}, experiment)
    restored, _ = restored_settings(header, experiment)
    assert restored.failure_config == FailureConfig(max_failures=2, node_silence_s=None)
    del header["run_config"]["failure_config"]["node_silence_s"]
    older, _ = restored_settings(header, experiment)
    assert older.failure_config == FailureConfig(max_failures=2)


# -- RunConfig --------------------------------------------------------------------------------


def test_run_config_none_nested_configs_become_defaults() -> None:
    """checkpoint_config=None and failure_config=None mean the defaults, as in Ray."""
    config = RunConfig(checkpoint_config=None, failure_config=None)  # type: ignore[arg-type]
    assert config.checkpoint_config == CheckpointConfig()
    assert config.failure_config == FailureConfig()


@pytest.mark.parametrize("field", ["checkpoint_config", "failure_config"])
def test_run_config_nested_configs_must_have_the_right_type(field: str) -> None:
    """A nested config of the wrong type raises TypeError naming the field."""
    with pytest.raises(TypeError, match=f"{field}="):
        RunConfig(**{field: {"num_to_keep": 1}})


@pytest.mark.parametrize("name", ["a/b", "a\\b", "/abs", "..", ".", ""])
def test_run_config_name_must_be_a_folder_name(name: str) -> None:
    """An experiment name with '/', '\\', or that is '.', '..' or empty is rejected."""
    with raises_naming("name", name):
        RunConfig(name=name)


def test_run_config_name_must_be_a_string() -> None:
    """A non-string experiment name is rejected."""
    with raises_naming("name", 42):
        RunConfig(name=42)  # type: ignore[arg-type]


def test_run_config_accepts_plain_name() -> None:
    """A plain folder name (dots and dashes included) is accepted."""
    assert RunConfig(name="exp-1.v2").name == "exp-1.v2"


@pytest.mark.parametrize(
    ("stop", "field", "value"),
    [
        ({"acc": "high"}, "stop['acc']", "high"),
        ({"acc": False}, "stop['acc']", False),
        ({"acc": None}, "stop['acc']", None),
        ({"acc": [1]}, "stop['acc']", [1]),
        ({1: 2}, "stop[1]", 2),
        (5, "stop", 5),
        ("acc", "stop", "acc"),
    ],
)
def test_run_config_stop_validation(stop: Any, field: str, value: Any) -> None:
    """stop must be a dict of numeric thresholds with str keys, a callable or None."""
    with raises_naming(field, value):
        RunConfig(stop=stop)


def test_run_config_stop_accepts_dict_callable_and_none() -> None:
    """Numeric thresholds, a callable and None are valid stop criteria."""
    assert RunConfig(stop={"acc": 0.9, "training_iteration": 10}).stop == {
        "acc": 0.9,
        "training_iteration": 10,
    }

    def stopper(trial_id: str, result: dict[str, Any]) -> bool:
        return False

    assert RunConfig(stop=stopper).stop is stopper
    assert RunConfig(stop=None).stop is None


@pytest.mark.parametrize("value", [4, -1, "1", None, 1.0])
def test_run_config_verbose_must_be_a_level(value: Any) -> None:
    """verbose other than 0-3, a Verbosity or a bool is rejected."""
    with raises_naming("verbose", value):
        RunConfig(verbose=value)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (False, 0),
        (True, 1),
        (0, 0),
        (2, 2),
        (3, 2),
        (Verbosity.V0_MINIMAL, 0),
        (Verbosity.V1_EXPERIMENT, 1),
        (Verbosity.V2_TRIAL_NORM, 2),
        (Verbosity.V3_TRIAL_DETAILS, 2),
    ],
)
def test_run_config_verbose_takes_ray_tunes_values(value: Any, level: int) -> None:
    """Ray Tune's booleans and Verbosity levels map onto tune_ckpt's three levels."""
    verbose = RunConfig(verbose=value).verbose
    assert verbose == level and type(verbose) is int


@pytest.mark.parametrize("value", ["sharedfs", "", "OBJECT_STORE", None])
def test_run_config_checkpoint_transfer_values(value: Any) -> None:
    """checkpoint_transfer must be "auto", "shared" or "object_store"."""
    with raises_naming("checkpoint_transfer", value):
        RunConfig(checkpoint_transfer=value)


@pytest.mark.parametrize("value", ["auto", "shared", "object_store"])
def test_run_config_checkpoint_transfer_accepts_modes(value: Any) -> None:
    """All three transfer modes are valid."""
    assert RunConfig(checkpoint_transfer=value).checkpoint_transfer == value


def test_run_config_storage_path_must_be_path_like() -> None:
    """A storage_path that is neither str nor PathLike is rejected."""
    with raises_naming("storage_path", 123):
        RunConfig(storage_path=123)  # type: ignore[arg-type]


def test_run_config_storage_filesystem_must_be_pyarrow() -> None:
    """storage_filesystem must be a pyarrow FileSystem; a real one is accepted."""
    with raises_naming("storage_filesystem", "s3"):
        RunConfig(storage_filesystem="s3")
    fs = pafs.LocalFileSystem()
    assert RunConfig(storage_filesystem=fs).storage_filesystem is fs


# -- TuneConfig -------------------------------------------------------------------------------


def test_tune_config_mode_without_metric() -> None:
    """mode without metric is rejected, naming mode and its value."""
    with pytest.raises(ValueError, match=re.escape("mode='max'")) as info:
        TuneConfig(mode="max")
    assert "metric" in str(info.value)


@pytest.mark.parametrize("value", ["maximize", "MIN", ""])
def test_tune_config_mode_values(value: str) -> None:
    """mode must be "min", "max" or None."""
    with raises_naming("mode", value):
        TuneConfig(metric="loss", mode=value)


@pytest.mark.parametrize("value", [0, -1, 1.0, True])
def test_tune_config_num_samples(value: Any) -> None:
    """num_samples must be an int >= 1."""
    with raises_naming("num_samples", value):
        TuneConfig(num_samples=value)


def test_tune_config_metric_must_be_a_string() -> None:
    """A non-string metric is rejected."""
    with raises_naming("metric", 3):
        TuneConfig(metric=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_tune_config_max_concurrent_trials(value: Any) -> None:
    """max_concurrent_trials must be an int >= 1 or None."""
    with raises_naming("max_concurrent_trials", value):
        TuneConfig(max_concurrent_trials=value)


@pytest.mark.parametrize("value", ["optuna", object(), dict])
def test_tune_config_search_alg_must_be_a_searcher(value: Any) -> None:
    """search_alg is a tune_ckpt.search.Searcher or None, checked at construction."""
    with pytest.raises(ValueError, match=re.escape(f"search_alg={value!r}")) as info:
        TuneConfig(search_alg=value)
    assert "tune_ckpt.search.Searcher or None" in str(info.value)


def test_tune_config_search_alg_accepts_searchers() -> None:
    from tune_ckpt.search import BasicVariantGenerator, ConcurrencyLimiter

    limited = ConcurrencyLimiter(BasicVariantGenerator(), max_concurrent=2)
    assert TuneConfig(search_alg=limited).search_alg is limited


def test_tune_config_reuse_actors_must_be_bool() -> None:
    """reuse_actors must be a bool."""
    with raises_naming("reuse_actors", "yes"):
        TuneConfig(reuse_actors="yes")  # type: ignore[arg-type]


def test_tune_config_valid_combination() -> None:
    """A fully specified valid TuneConfig keeps its values."""
    config = TuneConfig(
        num_samples=4, metric="val/acc", mode="min", max_concurrent_trials=2, reuse_actors=True
    )
    assert (config.num_samples, config.metric, config.mode) == (4, "val/acc", "min")
    assert (config.max_concurrent_trials, config.reuse_actors) == (2, True)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: FailureConfig(fail_fast=1), "fail_fast"),
    ],
)
def test_lookalike_values_are_rejected(factory: Any, field: str) -> None:
    """1 is not True and True is not 1 here: equal-comparing values of the wrong type fail."""
    with pytest.raises(ValueError, match=field):
        factory()


# -- StorageRetry -----------------------------------------------------------------------------


def test_storage_retry_defaults() -> None:
    """The default policy retries for five minutes, waits from 0.2 s up to 20 s."""
    policy = StorageRetry()
    assert (policy.max_elapsed_s, policy.initial_s, policy.max_s) == (300.0, 0.2, 20.0)
    assert RunConfig().storage_retry == policy
    assert RunConfig(storage_retry=None).storage_retry == policy


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_elapsed_s", -1),
        ("max_elapsed_s", "300"),
        ("max_elapsed_s", True),
        ("max_elapsed_s", float("nan")),
        ("initial_s", 0),
        ("initial_s", -0.1),
        ("initial_s", None),
        ("max_s", 0.1),
    ],
)
def test_storage_retry_validation_names_field_and_value(field: str, value: Any) -> None:
    """Each bad value raises at construction naming the field, the value and what is allowed."""
    with raises_naming(field, value) as info:
        StorageRetry(**{field: value})
    assert "is invalid: a number" in str(info.value)


def test_storage_retry_max_s_below_initial_names_the_bound() -> None:
    """max_s below initial_s says which initial_s it must reach."""
    with pytest.raises(
        ValueError, match=re.escape("max_s=0.5 is invalid: a number >= initial_s (1)")
    ):
        StorageRetry(initial_s=1, max_s=0.5)


def test_storage_retry_zero_budget_is_allowed() -> None:
    """max_elapsed_s=0 is a valid policy: one attempt, no retries."""
    assert StorageRetry(max_elapsed_s=0).max_elapsed_s == 0


def test_backoff_bounds_double_up_to_max() -> None:
    """The bound of retry n is initial_s * 2**(n-1), capped at max_s (huge n included)."""
    policy = StorageRetry(initial_s=0.2, max_s=20)
    bounds = [policy.backoff_bound(n) for n in range(1, 10)]
    assert bounds[:7] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8])
    assert bounds[7:] == [20.0, 20.0]
    assert policy.backoff_bound(10_000) == 20.0


@pytest.mark.parametrize("uniform", [0.0, 0.25, 0.999999])
def test_backoff_is_full_jitter(uniform: float) -> None:
    """The wait is the uniform draw scaled to the whole bound: anywhere in [0, bound)."""
    policy = StorageRetry(initial_s=1, max_s=8)
    for retry in range(1, 6):
        wait = policy.backoff(retry, uniform)
        assert wait == pytest.approx(uniform * policy.backoff_bound(retry))
        assert 0 <= wait < policy.backoff_bound(retry) or wait == 0


def test_run_config_storage_retry_must_be_a_policy() -> None:
    """RunConfig(storage_retry=...) accepts a StorageRetry or None only."""
    with pytest.raises(TypeError, match=re.escape("storage_retry={'max_elapsed_s': 5} is invalid")):
        RunConfig(storage_retry={"max_elapsed_s": 5})  # type: ignore[arg-type]
    policy = StorageRetry(max_elapsed_s=5)
    assert RunConfig(storage_retry=policy).storage_retry is policy


def test_storage_retry_is_frozen_and_top_level() -> None:
    """The policy is immutable and importable as tune_ckpt.StorageRetry."""
    import tune_ckpt

    assert tune_ckpt.StorageRetry is StorageRetry
    with pytest.raises(dataclasses.FrozenInstanceError):
        StorageRetry().max_s = 1  # type: ignore[misc]


@pytest.mark.parametrize("field", ["trial_name_creator", "trial_dirname_creator"])
def test_tune_config_creators_must_be_callable(field: str) -> None:
    """Ray Tune's trial_name_creator/trial_dirname_creator: a function or None."""
    with pytest.raises(TypeError, match=re.escape(f"{field}='trial' is invalid: a function")):
        TuneConfig(**{field: "trial"})
    assert getattr(TuneConfig(**{field: str}), field) is str
