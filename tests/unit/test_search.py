"""Tests for tune_ckpt.search: grid and random domains expanded into trial configs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tune_ckpt.search import (
    Choice,
    LogUniform,
    RandInt,
    Uniform,
    choice,
    generate_configs,
    grid_search,
    loguniform,
    randint,
    uniform,
)


def test_grid_search_uses_ray_dict_form() -> None:
    """grid_search returns Ray Tune's {"grid_search": [...]} form."""
    assert grid_search((1, 2)) == {"grid_search": [1, 2]}


def test_grid_search_rejects_empty() -> None:
    """An empty grid is rejected."""
    with pytest.raises(ValueError, match="grid_search"):
        grid_search([])


def test_choice_rejects_empty() -> None:
    """An empty choice is rejected."""
    with pytest.raises(ValueError, match="choice"):
        choice([])


def test_grid_cross_product_in_order() -> None:
    """Two grids give their cross product, the first key varying slowest."""
    space = {"a": grid_search([1, 2]), "b": grid_search(["x", "y", "z"])}
    configs = generate_configs(space)
    assert [(c["a"], c["b"]) for c in configs] == [
        (1, "x"),
        (1, "y"),
        (1, "z"),
        (2, "x"),
        (2, "y"),
        (2, "z"),
    ]


def test_num_samples_repeats_the_grid() -> None:
    """A 3-value grid with num_samples=2 gives 6 configs, the grid order repeated."""
    configs = generate_configs({"lr": grid_search([0.1, 0.01, 0.001])}, num_samples=2)
    assert [c["lr"] for c in configs] == [0.1, 0.01, 0.001, 0.1, 0.01, 0.001]


def test_num_samples_resamples_random_domains_per_config() -> None:
    """With a grid and num_samples, every config draws its own random values."""
    space = {"g": grid_search([1, 2, 3]), "u": uniform(0, 1)}
    configs = generate_configs(space, num_samples=2, seed=0)
    assert len(configs) == 6
    assert len({c["u"] for c in configs}) == 6


def test_constants_pass_through() -> None:
    """Values that are neither grids nor domains are copied as they are."""
    configs = generate_configs({"a": 1, "b": "s", "c": [1, 2], "d": {"e": None}}, num_samples=2)
    assert configs == [{"a": 1, "b": "s", "c": [1, 2], "d": {"e": None}}] * 2


def test_nested_dicts_and_lists() -> None:
    """Grids and domains nested in dicts and lists are resolved in place."""
    space = {
        "optimizer": {"name": "sgd", "lr": grid_search([0.1, 0.2]), "mom": uniform(0.5, 0.9)},
        "layers": [grid_search([16, 32]), {"act": choice(["relu", "tanh"])}],
    }
    configs = generate_configs(space, seed=1)
    assert len(configs) == 4
    assert [(c["optimizer"]["lr"], c["layers"][0]) for c in configs] == [
        (0.1, 16),
        (0.1, 32),
        (0.2, 16),
        (0.2, 32),
    ]
    for config in configs:
        assert config["optimizer"]["name"] == "sgd"
        assert 0.5 <= config["optimizer"]["mom"] <= 0.9
        assert config["layers"][1]["act"] in ("relu", "tanh")


def test_generated_configs_are_independent_copies() -> None:
    """Mutating a generated config changes neither the space nor the other configs."""
    space: dict[str, Any] = {"nested": {"lr": grid_search([1, 2]), "tags": ["a"]}}
    configs = generate_configs(space)
    configs[0]["nested"]["tags"].append("b")
    configs[0]["nested"]["lr"] = 99
    assert configs[1]["nested"] == {"lr": 2, "tags": ["a"]}
    assert space["nested"]["tags"] == ["a"]
    assert space["nested"]["lr"] == {"grid_search": [1, 2]}


def test_empty_space_gives_one_empty_config_per_sample() -> None:
    """None or {} gives num_samples empty configs."""
    assert generate_configs(None) == [{}]
    assert generate_configs({}, num_samples=3) == [{}, {}, {}]


def test_param_space_must_be_a_dict() -> None:
    """A non-dict param_space raises TypeError naming it."""
    with pytest.raises(TypeError, match="param_space"):
        generate_configs([1, 2])  # type: ignore[arg-type]


def test_random_domains_stay_within_bounds() -> None:
    """uniform, loguniform, randint and choice draw only allowed values."""
    space = {
        "u": uniform(-2, 3),
        "lu": loguniform(1e-4, 1e-1),
        "ri": randint(0, 3),
        "c": choice(["a", "b"]),
    }
    configs = generate_configs(space, num_samples=300, seed=7)
    assert all(-2 <= c["u"] <= 3 for c in configs)
    assert all(1e-4 <= c["lu"] <= 1e-1 for c in configs)
    assert {c["ri"] for c in configs} == {0, 1, 2}  # upper bound exclusive
    assert {c["c"] for c in configs} == {"a", "b"}
    assert all(isinstance(c["ri"], int) for c in configs)


def test_loguniform_spreads_over_orders_of_magnitude() -> None:
    """loguniform samples the log scale: each decade gets a fair share."""
    configs = generate_configs({"lr": loguniform(1e-4, 1)}, num_samples=400, seed=3)
    decades = {math.floor(math.log10(c["lr"])) for c in configs}
    assert decades == {-4, -3, -2, -1}


def test_seed_reproducibility() -> None:
    """The same seed gives the same configs; another seed gives different ones."""
    space = {"g": grid_search([1, 2]), "u": uniform(0, 1), "r": randint(0, 10**9)}
    first = generate_configs(space, num_samples=3, seed=42)
    assert first == generate_configs(space, num_samples=3, seed=42)
    assert first != generate_configs(space, num_samples=3, seed=43)


@pytest.mark.parametrize(
    ("factory", "lower", "upper"),
    [
        (uniform, 1.0, 1.0),
        (uniform, 2.0, 1.0),
        (loguniform, 1.0, 0.5),
        (randint, 5, 5),
        (randint, 5, 2),
    ],
)
def test_bad_bounds(factory: Any, lower: float, upper: float) -> None:
    """lower >= upper is rejected, naming the domain and both bounds."""
    with pytest.raises(ValueError) as info:
        factory(lower, upper)
    message = str(info.value)
    assert factory.__name__ in message
    assert f"lower={lower!r}" in message and f"upper={upper!r}" in message


@pytest.mark.parametrize("lower", [0, -1.0])
def test_loguniform_needs_positive_bounds(lower: float) -> None:
    """loguniform with a bound <= 0 is rejected."""
    with pytest.raises(ValueError, match=r"loguniform\(lower="):
        loguniform(lower, 1.0)


def test_factories_return_domains() -> None:
    """The factories build the documented domain types with float/int bounds."""
    assert uniform(0, 1) == Uniform(0.0, 1.0)
    assert loguniform(1, 10) == LogUniform(1.0, 10.0)
    assert randint(0, 5) == RandInt(0, 5)
    assert choice([1, 2]) == Choice((1, 2))
