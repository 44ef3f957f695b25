"""Names and folders of new trials (TuneConfig's creators, Ray Tune's experiment_tag)."""

from __future__ import annotations

from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.trial import Trial
from tune_ckpt.trial_naming import experiment_tag, name_trials


def trials(n: int) -> list[Trial]:
    made = []
    for i in range(n):
        trial = Trial(f"abcde_{i:05d}", {"x": i, "opts": {"lr": 0.001234567}}, f"fn_abcde_{i:05d}")
        trial.trainable_name = "fn"
        made.append(trial)
    return made


def test_experiment_tag_lists_the_sampled_and_grid_values() -> None:
    space = {"x": tune.grid_search([0, 1]), "opts": {"lr": tune.uniform(0, 1)}, "c": 5}
    assert experiment_tag(3, {"x": 1, "opts": {"lr": 0.001234567}, "c": 5}, space) == (
        "3_x=1,lr=0.001235"
    )
    assert experiment_tag(0, {"c": 5}, {"c": 5}) == "0"


def test_creators_set_names_and_folders_and_see_the_trial() -> None:
    made = trials(2)
    seen: list[Any] = []

    def name(trial: Trial) -> str:
        seen.append((trial.trainable_name, trial.trial_id, trial.config["x"]))
        return f"{trial.trainable_name}_{trial.trial_id}_123"

    name_trials(made, name, lambda t: f"x={t.config['x']}")
    assert seen == [("fn", "abcde_00000", 0), ("fn", "abcde_00001", 1)]
    assert [(t.trial_name, t.trial_dir, str(t)) for t in made] == [
        ("fn_abcde_00000_123", "x=0", "fn_abcde_00000_123"),
        ("fn_abcde_00001_123", "x=1", "fn_abcde_00001_123"),
    ]


def test_without_creators_the_defaults_stay() -> None:
    made = trials(1)
    name_trials(made, None, None)
    assert (made[0].trial_name, made[0].trial_dir, made[0].name) == (
        "",
        "fn_abcde_00000",
        "fn_abcde_00000",
    )


@pytest.mark.parametrize(
    ("dirname", "why"),
    [
        ("a/b", "without '/'"),
        ("..", "may not start with '.'"),
        (".hidden", "may not start with '.'"),
        ("", "a non-empty str"),
        ("experiment_journal.jsonl", "the experiment's own files"),
    ],
)
def test_unsafe_folder_names_are_refused_naming_trial_and_value(dirname: str, why: str) -> None:
    with pytest.raises(ValueError, match="trial abcde_00000") as info:
        name_trials(trials(1), None, lambda t: dirname, reserved={"experiment_journal.jsonl"})
    assert repr(dirname) in str(info.value) and why in str(info.value)


def test_a_folder_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'same' for trials abcde_00000 and abcde_00001"):
        name_trials(trials(2), None, lambda t: "same")


def test_a_name_that_is_not_a_string_or_raises_is_refused() -> None:
    with pytest.raises(ValueError, match="trial_name_creator\\) returned 7 for trial abcde_00000"):
        name_trials(trials(1), lambda t: 7, None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="raised KeyError for trial abcde_00000"):
        name_trials(trials(1), lambda t: t.config["missing"], None)
