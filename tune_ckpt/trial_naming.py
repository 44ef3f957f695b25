"""Names and folders of new trials: Ray Tune's ``experiment_tag`` and the user's
``TuneConfig(trial_name_creator=..., trial_dirname_creator=...)``, checked at once.

A trial folder's name is one path segment under the experiment: not empty, no ``/`` or
``\\``, not ``.``/``..``, not hidden (``.``-prefixed names are tune_ckpt's markers), not one
of the experiment's own files, and unique across the trials.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from tune_ckpt.errors import UnsafePathError
from tune_ckpt.search.variant_generator import leaves
from tune_ckpt.storage import paths
from tune_ckpt.trial import Trial


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 20 else text[:17] + "..."


def experiment_tag(index: int, config: dict[str, Any], space: dict[str, Any]) -> str:
    """``"<index>_<key>=<value>,..."`` for the space's grid and sampled values (just the
    index when it has none), as Ray Tune tags its trials."""
    parts = []
    for path, _ in leaves(space):
        node: Any = config
        try:
            for key in path:
                node = node[key]
        except (KeyError, IndexError, TypeError):
            continue
        parts.append(f"{path[-1]}={_short(node)}")
    return f"{index}_{','.join(parts)}" if parts else str(index)


def _created(creator: Callable[[Any], str], trial: Trial, label: str) -> str:
    try:
        value = creator(trial)
    except Exception as exc:
        raise ValueError(
            f"TuneConfig({label}={creator!r}) raised {type(exc).__name__} for trial "
            f"{trial.trial_id}: {exc}"
        ) from exc
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"TuneConfig({label}) returned {value!r} for trial {trial.trial_id}: a non-empty str"
        )
    return value


def check_dirname(name: str, trial_id: str, reserved: Collection[str] = ()) -> str:
    """``name`` if it can be a trial's folder (one safe segment, not hidden or reserved)."""
    problem = ""
    if "/" in name or "\\" in name:
        problem = "one folder name is needed, without '/' or '\\'"
    elif name.startswith("."):
        problem = (
            "it may not start with '.' ('..' escapes the experiment, '.' names are tune_ckpt's)"
        )
    elif name in reserved:
        problem = "the experiment's own files use that name"
    else:
        try:
            paths.check_relative(name)
        except UnsafePathError as exc:
            problem = str(exc)
    if problem:
        raise ValueError(
            f"TuneConfig(trial_dirname_creator) returned {name!r} for trial {trial_id}, "
            f"which is not a valid trial folder: {problem}"
        )
    return name


def name_trials(
    trials: Sequence[Trial],
    name_creator: Callable[[Any], str] | None,
    dirname_creator: Callable[[Any], str] | None,
    reserved: Collection[str] = (),
) -> None:
    """Call the creators once per new trial (name first, then folder, as Ray Tune) and
    set ``trial_name`` and ``trial_dir``; a bad or repeated folder name raises ValueError
    naming the trial before anything is written."""
    used: dict[str, str] = {}
    for trial in trials:
        if name_creator is not None:
            trial.trial_name = _created(name_creator, trial, "trial_name_creator")
        if dirname_creator is not None:
            dirname = check_dirname(
                _created(dirname_creator, trial, "trial_dirname_creator"),
                trial.trial_id,
                reserved,
            )
            if dirname in used:
                raise ValueError(
                    f"TuneConfig(trial_dirname_creator) returned {dirname!r} for trials "
                    f"{used[dirname]} and {trial.trial_id}: each trial needs its own folder"
                )
            used[dirname] = trial.trial_id
            trial.trial_dir = paths.join(dirname)
