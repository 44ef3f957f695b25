"""PB2: population based training whose explore step is a GP bandit (Ray Tune's ``PB2``).

Exploits are PBT's (:mod:`tune_ckpt.schedulers.pbt`): at each perturbation point the bottom
``quantile_fraction`` of the population clones a top trial. What differs is the config the
clone continues with: instead of perturbing the donor's values at random, PB2 fits a Gaussian
process to how fast each trial's reward changed under its hyperparameters and picks the
values with the highest upper confidence bound, within ``hyperparam_bounds``
(:mod:`tune_ckpt.schedulers.pb2_gp`; Parker-Holder et al. 2020). Keys of
``hyperparam_bounds`` missing from a trial's config are drawn uniformly within their bounds
when the trial is added.

Departures from Ray: draws (initial values, the bandit's random candidates) come from the
scheduler's seeded ``random.Random``, kept in its state; the GP is fitted on the newest 200
reward changes (Ray picks a window of at least 200 by marginal likelihood); an int
hyperparameter is rounded, not truncated; the bound checks name the key at construction.

State (``save_state``): PBT's, plus ``pb2``: ``observations`` (``[trial_id, time, values,
reward]`` per perturbation point, the newest :data:`MAX_OBSERVATIONS`), ``pending`` (the
values chosen since the newest observation's time) and ``last_exploration_time``, so a
restored sweep keeps its model's data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from tune_ckpt.schedulers.base import SchedulerContext
from tune_ckpt.schedulers.pbt import PopulationBasedTraining
from tune_ckpt.trial import Trial

MAX_OBSERVATIONS = 2000
"""Observations kept (and saved); the GP uses fewer (``pb2_gp.MAX_POINTS`` changes)."""

Path = tuple[str, ...]


def require_gp_libraries() -> None:
    """Raise ImportError naming the extra when scikit-learn or scipy is missing."""
    try:
        import scipy.optimize  # noqa: F401
        import sklearn.gaussian_process  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"PB2 needs scikit-learn and scipy ({exc}): install the pb2 extra, "
            "pip install 'tune_ckpt[pb2]'"
        ) from exc


def flatten_bounds(bounds: Any, where: Path = ()) -> dict[Path, tuple[float, float]]:
    """``hyperparam_bounds`` as key path -> (low, high); raises naming a bad entry."""

    def label(path: Path) -> str:
        return "hyperparam_bounds" + "".join(f"[{key!r}]" for key in path)

    if not isinstance(bounds, Mapping) or not bounds:
        raise ValueError(
            f"PB2({label(where)}={bounds!r}) is invalid: a non-empty dict of key -> "
            "[low, high] (or a nested dict)"
        )
    flat: dict[Path, tuple[float, float]] = {}
    for key, value in bounds.items():
        path = (*where, key)
        if isinstance(value, Mapping):
            flat.update(flatten_bounds(value, path))
            continue
        pair = list(value) if isinstance(value, list | tuple) else None
        if (
            pair is None
            or len(pair) != 2
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in pair)
            or not all(math.isfinite(v) for v in pair)
            or pair[0] > pair[1]
        ):
            raise ValueError(
                f"PB2({label(path)}={value!r}) is invalid: a [low, high] pair of finite "
                "numbers with low <= high"
            )
        flat[path] = (float(pair[0]), float(pair[1]))
    return flat


def _get(config: Mapping[str, Any], path: Path) -> Any:
    for key in path:
        config = config[key]
    return config


def _set(config: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        config = config.setdefault(key, {})
    config[path[-1]] = value


class PB2(PopulationBasedTraining):
    """Population Based Bandits with Ray Tune's arguments (see the module docstring).

    Args:
        time_attr, metric, mode, perturbation_interval, quantile_fraction, log_config,
            require_attrs, synch, custom_explore_fn: as for
            :class:`~tune_ckpt.schedulers.PopulationBasedTraining`;
            ``custom_explore_fn(config)`` sees the config the bandit chose.
        hyperparam_bounds: key -> ``[low, high]`` (a nested dict for nested keys): the
            hyperparameters PB2 chooses, all numbers.
        seed: seeds every random choice (donors, initial values, the bandit's search).
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        hyperparam_bounds: dict[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        require_gp_libraries()
        self._bounds = flatten_bounds(hyperparam_bounds)
        super().__init__(
            time_attr=time_attr,
            metric=metric,
            mode=mode,
            perturbation_interval=perturbation_interval,
            hyperparam_mutations=hyperparam_bounds,
            quantile_fraction=quantile_fraction,
            resample_probability=0.0,
            custom_explore_fn=custom_explore_fn,
            log_config=log_config,
            require_attrs=require_attrs,
            synch=synch,
            seed=seed,
        )
        self._observations: list[list[Any]] = []  # [trial_id, time, values, reward]
        self._pending: list[list[float]] = []
        self._last_exploration_time = -math.inf

    def on_trial_add(self, runner: SchedulerContext, trial: Trial) -> None:
        """Draws the bounded keys a trial's config lacks uniformly within their bounds;
        raises for a bounded value that is not a number."""
        for path, (low, high) in self._bounds.items():
            try:
                _get(trial.config, path)
            except (KeyError, TypeError):
                _set(trial.config, path, self._rng.uniform(low, high))
        self._values(trial)  # checked now, before the trial trains
        super().on_trial_add(runner, trial)

    def _values(self, trial: Trial) -> list[float]:
        values = []
        for path in self._bounds:
            try:
                value = _get(trial.config, path)
            except (KeyError, TypeError):
                value = None
            if isinstance(value, bool) or not isinstance(value, int | float):
                key = "".join(f"[{k!r}]" for k in path)
                raise ValueError(
                    f"PB2: trial {trial.trial_id}'s config{key}={value!r} is invalid: a "
                    "number (a key of hyperparam_bounds)"
                )
            values.append(float(value))
        return values

    def _record_point(self, trial: Trial, time: float, score: float) -> None:
        self._observe(trial.trial_id, time, self._values(trial), score)

    def _observe(self, trial_id: str, time: float, values: list[float], reward: float) -> None:
        self._observations.append([trial_id, time, values, reward])
        del self._observations[:-MAX_OBSERVATIONS]

    def _explore_config(self, trial: Trial, donor: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        """The bandit's choice for ``trial`` continuing from ``donor``'s checkpoint; the
        donor's config unchanged while there is no reward change to learn from."""
        new_config = copy.deepcopy(dict(donor.config))
        donor_points = [o for o in self._observations if o[0] == donor.trial_id]
        chosen = self._choose(donor_points[-1]) if donor_points else None
        if chosen is not None:
            for (path, (low, high)), value in zip(self._bounds.items(), chosen, strict=True):
                old = _get(donor.config, path)
                picked = min(max(float(value), low), high)
                _set(new_config, path, round(picked) if isinstance(old, int) else picked)
            # The clone starts from the donor's weights with the new values: its next
            # reward change is measured from there.
            _, time, _, reward = donor_points[-1]
            self._observe(trial.trial_id, time, self._values_of(new_config), reward)
        if self._custom_explore_fn is not None:
            explored = self._custom_explore_fn(new_config)
            if explored is None:
                raise ValueError("custom_explore_fn returned None: it must return the config")
            new_config = explored
        return new_config, {}

    def _values_of(self, config: Mapping[str, Any]) -> list[float]:
        return [float(_get(config, path)) for path in self._bounds]

    def _choose(self, donor_point: list[Any]) -> list[float] | None:
        """The GP-UCB choice at the donor's latest (time, reward), or None without data."""
        from tune_ckpt.schedulers import pb2_gp

        observations = [
            pb2_gp.Observation(o[0], float(o[1]), tuple(o[2]), float(o[3]))
            for o in self._observations
        ]
        X, y = pb2_gp.reward_changes(observations)
        if len(y) == 0:
            return None
        newest = max(o.time for o in observations)
        if newest > self._last_exploration_time:  # a new round: earlier picks are old news
            self._pending = []
            self._last_exploration_time = newest
        import numpy as np

        lows = [low for low, _ in self._bounds.values()]
        highs = [high for _, high in self._bounds.values()]
        # The context, as in the data: the donor's latest time and the reward it had one
        # perturbation earlier (its latest reward without an earlier point).
        donor_id, time, _, reward = donor_point
        earlier = [o[3] for o in self._observations if o[0] == donor_id and o[1] < time]
        context = (float(time), float(earlier[-1] if earlier else reward))
        rng = np.random.default_rng(self._rng.getrandbits(63))
        point = pb2_gp.select_point(X, y, context, self._pending, lows, highs, rng)
        chosen = [float(v) for v in point]
        self._pending.append(chosen)
        return chosen

    def debug_string(self) -> str:
        return f"PB2: {len(self._observations)} observations; " + super().debug_string()

    def save_state(self) -> dict[str, Any]:
        state = super().save_state()
        state["pb2"] = {
            "observations": copy.deepcopy(self._observations),
            "pending": copy.deepcopy(self._pending),
            "last_exploration_time": (
                None if math.isinf(self._last_exploration_time) else self._last_exploration_time
            ),
        }
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        super().restore_state(state)
        pb2 = state["pb2"]
        self._observations = [
            [str(t), float(time), [float(v) for v in values], float(reward)]
            for t, time, values, reward in pb2["observations"]
        ]
        self._pending = [[float(v) for v in point] for point in pb2["pending"]]
        last = pb2["last_exploration_time"]
        self._last_exploration_time = -math.inf if last is None else float(last)
