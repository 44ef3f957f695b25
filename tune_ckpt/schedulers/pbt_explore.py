"""PBT's explore step, the initial fill of missing hyperparameters, and its log lines.

``explore`` follows Ray Tune's ``_explore``: for each key of ``hyperparam_mutations``

- a dict: explore the nested config the same way;
- a list or tuple: with ``resample_probability``, or when the current value is not in it,
  draw a value from it (``"resample"``); else shift to the left or right neighbour, clamped
  at the ends (``"shift left"``, ``"shift right (noop)"``);
- a search-space object (``tune_ckpt.search.uniform(...)`` etc.) or a callable: with
  ``resample_probability`` draw a new value (``"resample"``), else multiply by one of the
  ``perturbation_factors`` (``"* 1.2"``); an int value stays an int (truncated).

Then ``custom_explore_fn(config)`` may change the result. All draws come from the ``rng``
passed in, in Ray's order, so a seeded scheduler explores the same way every time.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tune_ckpt.metrics import jsonable
from tune_ckpt.search import Domain

Mutations = Mapping[str, Any]


def check_mutations(mutations: Mutations, where: str = "hyperparam_mutations") -> None:
    """Raise for a value that is not a dict, list, tuple, search-space object or callable."""
    for key, value in mutations.items():
        if isinstance(value, Mapping):
            check_mutations(value, f"{where}[{key!r}]")
        elif isinstance(value, list | tuple):
            if not value:
                raise ValueError(f"{where}[{key!r}]=[] is invalid: give at least one value")
        elif not (isinstance(value, Domain) or callable(value)):
            raise TypeError(
                f"{where}[{key!r}]={value!r} is invalid: a dict, list, tuple, search-space "
                "object (tune_ckpt.search.uniform, ...) or callable"
            )


def _draw(distribution: Any, rng: random.Random) -> Any:
    if isinstance(distribution, Domain):
        return distribution.sample(rng)
    return distribution()


def explore(
    config: Mapping[str, Any],
    mutations: Mutations,
    resample_probability: float,
    perturbation_factors: Sequence[float],
    custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None,
    rng: random.Random,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new config from ``config`` and what was done to each key (see the module doc)."""
    operations: dict[str, Any] = {}
    new_config = copy.deepcopy(dict(config))
    for key, distribution in mutations.items():
        if isinstance(distribution, Mapping):
            nested, nested_ops = explore(
                config[key], distribution, resample_probability, perturbation_factors, None, rng
            )
            new_config[key] = nested
            operations[key] = nested_ops
        elif isinstance(distribution, list | tuple):
            values = list(distribution)
            if rng.random() < resample_probability or config[key] not in values:
                new_config[key] = rng.choice(values)
                operations[key] = "resample"
            else:
                shift = rng.choice([-1, 1])
                old = values.index(config[key])
                new = min(max(old + shift, 0), len(values) - 1)
                new_config[key] = values[new]
                direction = "left" if shift == -1 else "right"
                operations[key] = f"shift {direction}{' (noop)' if old == new else ''}"
        else:
            if rng.random() < resample_probability:
                new_config[key] = _draw(distribution, rng)
                operations[key] = "resample"
            else:
                factor = rng.choice(list(perturbation_factors))
                new_config[key] = config[key] * factor
                operations[key] = f"* {factor}"
            if isinstance(config[key], int) and not isinstance(config[key], bool):
                new_config[key] = int(new_config[key])
    if custom_explore_fn is not None:
        explored = custom_explore_fn(new_config)
        if explored is None:
            raise ValueError("custom_explore_fn returned None: it must return the config")
        new_config = explored
    return new_config, operations


def fill_missing(config: dict[str, Any], mutations: Mutations, rng: random.Random) -> None:
    """Draw values for mutation keys a trial's config lacks (Ray's ``_fill_config``)."""
    for key, space in mutations.items():
        if key in config:
            continue
        if isinstance(space, Mapping):
            config[key] = {}
            fill_missing(config[key], space, rng)
        elif isinstance(space, list | tuple):
            config[key] = rng.choice(list(space))
        else:
            config[key] = _draw(space, rng)


def policy_record(
    trial_tag: str,
    donor_tag: str,
    trial_iteration: int,
    donor_iteration: int,
    donor_config: Mapping[str, Any],
    new_config: Mapping[str, Any],
) -> list[Any]:
    """One exploit as Ray logs it: ``[target tag, clone tag, target iteration, clone
    iteration, old config (the donor's), new config]``."""
    return [
        trial_tag,
        donor_tag,
        trial_iteration,
        donor_iteration,
        dict(donor_config),
        dict(new_config),
    ]


def policy_line(policy: Sequence[Any]) -> str:
    """The record as one JSON line (with its newline), as written to ``pbt_global.txt``
    and appended to ``pbt_policy_<trial_id>.txt``."""
    return json.dumps(jsonable(list(policy))) + "\n"


GLOBAL_LOG = "pbt_global.txt"
"""In the experiment folder: every exploit's line, appended."""


def policy_log_name(trial_id: str) -> str:
    """In the experiment folder: one trial's lineage. On an exploit it becomes a copy of
    the donor's file (if any) with the new line appended."""
    return f"pbt_policy_{trial_id}.txt"
