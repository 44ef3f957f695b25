"""The structure of a search space, as a restore checks and applies it."""

from __future__ import annotations

import json

import tune_ckpt as tune
from tune_ckpt.search.space_structure import apply_constants, describe, first_difference


def space() -> dict:
    return {
        "lr": tune.uniform(0.0, 1.0),
        "layers": tune.grid_search([1, 2, 3]),
        "model": {"kind": "mlp", "act": tune.choice(["relu", "tanh"]), "dims": (4, 8)},
        "seed": tune.sample_from(lambda spec: 1),
    }


def test_describe_names_domains_grids_containers_and_constant_types() -> None:
    structure = describe(space())
    assert structure == {
        "['lr']": "Uniform",
        "['layers']": "grid_search(3)",
        "['model']": "dict",
        "['model']['kind']": "str",
        "['model']['act']": "Choice",
        "['model']['dims']": "tuple",
        "['model']['dims'][0]": "int",
        "['model']['dims'][1]": "int",
        "['seed']": "Function",
    }
    assert json.loads(json.dumps(structure)) == structure  # stored in the journal header
    assert describe(None) == {} == describe({})


def test_the_same_space_with_other_constants_and_bounds_matches() -> None:
    other = space()
    other["lr"] = tune.uniform(0.5, 2.0)  # the class is the structure, not its bounds
    other["model"]["kind"] = "cnn"
    assert first_difference(describe(space()), describe(other)) is None


def test_differences_are_named_by_key_path() -> None:
    original = describe(space())
    extra = {**space(), "momentum": 0.9}
    assert first_difference(original, describe(extra)) == (
        "param_space['momentum'] (float) is not in the experiment's param_space"
    )
    missing = space()
    del missing["model"]["act"]
    assert "param_space['model']['act'] (Choice) is missing" in str(
        first_difference(original, describe(missing))
    )
    changed = {**space(), "lr": tune.choice([0.1, 0.2])}
    assert first_difference(original, describe(changed)) == (
        "param_space['lr'] is Choice, but the experiment was started with Uniform there"
    )
    shorter_grid = {**space(), "layers": tune.grid_search([1, 2])}
    assert "grid_search(2)" in str(first_difference(original, describe(shorter_grid)))
    constant_type = space()
    constant_type["model"]["dims"] = (4, "8")
    assert "param_space['model']['dims'][1] is str" in str(
        first_difference(original, describe(constant_type))
    )


def test_apply_constants_replaces_constants_and_keeps_sampled_values() -> None:
    config = {"lr": 0.3, "layers": 2, "model": {"kind": "mlp", "act": "tanh", "dims": (4, 8)}}
    new = space()
    new["model"]["kind"] = "cnn"
    new["model"]["dims"] = (16, 8)
    applied, changed = apply_constants(config, new)
    assert changed
    assert applied == {
        "lr": 0.3,
        "layers": 2,
        "model": {"kind": "cnn", "act": "tanh", "dims": (16, 8)},
    }
    assert isinstance(applied["model"]["dims"], tuple)
    assert config["model"]["kind"] == "mlp"  # the input is not modified
    assert apply_constants(applied, new) == (applied, False)


def test_apply_constants_replaces_objects_by_identity() -> None:
    class Handle:
        pass

    old, new = Handle(), Handle()
    applied, changed = apply_constants({"data": old, "x": 1}, {"data": new, "x": 1})
    assert changed and applied["data"] is new
    assert apply_constants({"data": new}, {"data": new}) == ({"data": new}, False)
