"""What must pickle before a sweep starts: the trainable (sent to every worker) and every
config (persisted exactly as ``params.pkl``); errors name the attribute or key path that
does not."""

from __future__ import annotations

import inspect
from typing import Any

from tune_ckpt.result_files import pickle_config
from tune_ckpt.search import Choice
from tune_ckpt.trial import Trial


def pickle_problem(trainable: Any) -> str | None:
    """None if ``trainable`` pickles; else which attribute or captured variable does not."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(trainable)
        return None
    except Exception as exc:
        whole = f"{type(exc).__name__}: {exc}"
    if isinstance(trainable, type):
        items = [
            (f"attribute {k!r}", v) for k, v in vars(trainable).items() if not k.startswith("__")
        ]
    else:
        try:
            captured = inspect.getclosurevars(trainable)
            items = [(f"captured variable {k!r}", v) for k, v in captured.nonlocals.items()]
            items += [(f"global {k!r}", v) for k, v in captured.globals.items()]
        except TypeError:
            items = []
    for label, value in items:
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return f"its {label} ({type(value).__name__}) cannot be pickled: {exc}"
    return whole


def unpicklable_key(value: Any, where: str) -> tuple[str, Any, Exception] | None:
    """None if ``value`` pickles; else the deepest key path inside it that does not, with
    that value and the error."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(value)
        return None
    except Exception as exc:
        whole = (where, value, exc)
    children: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            children += [(f"{where} key {key!r}", key), (f"{where}[{key!r}]", child)]
    elif isinstance(value, list | tuple):
        children = [(f"{where}[{i}]", child) for i, child in enumerate(value)]
    elif isinstance(value, Choice):
        children = [(f"{where} category {c!r}", c) for c in value.categories]
    for label, child in children:
        found = unpicklable_key(child, label)
        if found is not None:
            return found
    return whole


def check_param_space(param_space: dict[str, Any]) -> None:
    """Every config is persisted exactly (``params.pkl``), so the space must pickle."""
    found = unpicklable_key(param_space, "param_space")
    if found is not None:
        where, value, exc = found
        raise TypeError(
            f"{where}={value!r} cannot be persisted ({type(exc).__name__}: {exc}): a config "
            "must pickle with cloudpickle, so a restored trial gets it back exactly"
        )


def pickled_configs(trials: list[Trial]) -> dict[str, bytes]:
    """Each trial's ``params.pkl``, by trial id."""
    pickled = {}
    for trial in trials:
        try:
            pickled[trial.trial_id] = pickle_config(trial.config)
        except Exception as exc:
            found = unpicklable_key(trial.config, f"trial {trial.trial_id}'s config")
            where, value, cause = found if found is not None else ("config", trial.config, exc)
            raise TypeError(
                f"{where}={value!r} cannot be persisted ({type(cause).__name__}: {cause}): "
                "a config must pickle with cloudpickle"
            ) from exc
    return pickled
