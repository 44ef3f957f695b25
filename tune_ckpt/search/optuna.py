"""``OptunaSearch``: Optuna's samplers as a searcher (Ray Tune's
``ray.tune.search.optuna.OptunaSearch``), with its state saved for driver-crash recovery.

Needs the ``optuna`` extra (``pip install 'tune_ckpt[optuna]'``). Pruning stays with the
schedulers: the study uses Optuna's ``NopPruner``; intermediate results are reported to it
only so that samplers that use them can.
"""

from __future__ import annotations

import base64
import functools
import importlib
import logging
import pickle
from collections.abc import Callable, Mapping
from typing import Any

from tune_ckpt import metrics
from tune_ckpt.result import TRAINING_ITERATION
from tune_ckpt.search.sample import (
    Choice,
    Domain,
    LogRandInt,
    LogUniform,
    QLogRandInt,
    QLogUniform,
    QRandInt,
    QUniform,
    RandInt,
    Uniform,
)
from tune_ckpt.search.searcher import Searcher, SearcherStateError, check_state
from tune_ckpt.search.variant_generator import is_grid, where

ot: Any
try:  # imported by name so that a missing optional extra fails only when used
    ot = importlib.import_module("optuna")
except ImportError:
    ot = None

logger = logging.getLogger(__name__)

DEFAULT_METRIC = "_metric"  # the metric of a trainable that returns a bare number, as in Ray
_STATE_VERSION = 1


def _distribution(domain: Domain, path: tuple[Any, ...]) -> Any:
    """The Optuna distribution drawing what ``domain`` draws."""
    if isinstance(domain, Uniform):
        return ot.distributions.FloatDistribution(domain.lower, domain.upper)
    if isinstance(domain, LogUniform):
        return ot.distributions.FloatDistribution(domain.lower, domain.upper, log=True)
    if isinstance(domain, QUniform):
        return ot.distributions.FloatDistribution(domain.lower, domain.upper, step=domain.q)
    if isinstance(domain, QLogUniform):
        logger.warning(
            "Optuna cannot quantize a log-uniform float: %s is sampled without q=%r",
            where(path),
            domain.q,
        )
        return ot.distributions.FloatDistribution(domain.lower, domain.upper, log=True)
    if isinstance(domain, RandInt):
        return ot.distributions.IntDistribution(domain.lower, domain.upper - 1)
    if isinstance(domain, LogRandInt):
        return ot.distributions.IntDistribution(domain.lower, domain.upper - 1, log=True)
    if isinstance(domain, QRandInt):
        low = -(-domain.lower // domain.q) * domain.q
        return ot.distributions.IntDistribution(
            low, domain.upper // domain.q * domain.q, step=domain.q
        )
    if isinstance(domain, Choice):
        return ot.distributions.CategoricalDistribution(domain.categories)
    if isinstance(domain, QLogRandInt):
        reason = "Optuna cannot sample log-scale integers with a step (q)"
    else:
        reason = f"Optuna has no distribution for {type(domain).__name__}"
    raise ValueError(f"OptunaSearch cannot convert {where(path)}={domain!r}: {reason}")


def _distributions(
    tree: Mapping[str, Any], constants_allowed: bool, prefix: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """``{"a/b": distribution}`` for the domains (and Optuna distributions) in ``tree``."""
    found: dict[str, Any] = {}
    for key, value in tree.items():
        path = (*prefix, key)
        if is_grid(value):
            raise ValueError(f"{where(path)} is a grid_search, which OptunaSearch cannot sample")
        if isinstance(value, Domain):
            found["/".join(map(str, path))] = _distribution(value, path)
        elif isinstance(value, ot.distributions.BaseDistribution):
            found["/".join(map(str, path))] = value
        elif isinstance(value, dict):
            found.update(_distributions(value, constants_allowed, path))
        elif isinstance(value, list | tuple) and _holds_domain(value):
            raise ValueError(
                f"{where(path)} holds search-space entries inside a list: OptunaSearch samples "
                "entries of (nested) dicts only"
            )
        elif not constants_allowed:
            raise ValueError(
                f"OptunaSearch space {where(path, 'space')}={value!r} is invalid: an Optuna "
                "distribution or a tune_ckpt search-space entry"
            )
    return found


def _holds_domain(value: Any) -> bool:
    if isinstance(value, Domain) or is_grid(value):
        return True
    items = value.values() if isinstance(value, dict) else value
    return isinstance(value, dict | list | tuple) and any(_holds_domain(v) for v in items)


def _unflatten(params: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in params.items():
        *parents, last = name.split("/")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


class _SuggestCaptor:
    """The Optuna trial as a define-by-run function sees it, recording every suggested value."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial
        self.captured: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._trial, name)
        if not (name.startswith("suggest_") and callable(attribute)):
            return attribute

        @functools.wraps(attribute)
        def capture(*args: Any, **kwargs: Any) -> Any:
            value = attribute(*args, **kwargs)
            self.captured[kwargs["name"] if "name" in kwargs else args[0]] = value
            return value

        return capture


class OptunaSearch(Searcher):
    """Suggests configs with an Optuna sampler (TPE by default).

    Args:
        space: a dict of Optuna distributions or tune_ckpt search-space entries (nested
            dicts allowed, named ``"a/b"`` inside Optuna), or a define-by-run function
            ``space(trial) -> dict | None`` calling ``trial.suggest_*`` (its returned dict
            adds constants). None: the Tuner's ``param_space`` is converted.
        metric, mode: a result name and ``"min"``/``"max"``, or lists of them for
            multi-objective search. A mode without a metric optimises ``"_metric"``.
        points_to_evaluate: configs to run first.
        sampler: an ``optuna.samplers.BaseSampler``, seeded by the caller.
        seed: the seed of the default ``TPESampler`` (ignored when ``sampler`` is given).
        evaluated_rewards: results already known for ``points_to_evaluate`` (same length),
            told to the study instead of running those points.
        study_name, storage: Optuna's; an in-memory study by default.
    """

    def __init__(
        self,
        space: dict[str, Any] | Callable[[Any], dict[str, Any] | None] | None = None,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        sampler: Any = None,
        study_name: str | None = None,
        storage: Any = None,
        seed: int | None = None,
        evaluated_rewards: list[Any] | None = None,
    ) -> None:
        if ot is None:
            raise ImportError("OptunaSearch needs optuna: pip install 'tune_ckpt[optuna]'")
        super().__init__(metric=metric, mode=mode)
        if space is not None and not callable(space) and not isinstance(space, dict):
            raise ValueError(
                f"OptunaSearch(space={space!r}) is invalid: a dict of distributions, a "
                "define-by-run function or None"
            )
        if sampler is not None and not isinstance(sampler, ot.samplers.BaseSampler):
            raise ValueError(
                f"OptunaSearch(sampler={sampler!r}) is invalid: an optuna.samplers.BaseSampler"
            )
        if sampler is not None and seed is not None:
            logger.warning("OptunaSearch: seed=%r is ignored, the sampler given has its own", seed)
        points = list(points_to_evaluate or [])
        if evaluated_rewards is not None:
            if len(evaluated_rewards) != len(points):
                raise ValueError(
                    f"OptunaSearch(evaluated_rewards=[{len(evaluated_rewards)} values]) is "
                    f"invalid: one per point of points_to_evaluate ({len(points)})"
                )
            if callable(space):
                raise ValueError(
                    "OptunaSearch(evaluated_rewards=...) needs a dict space, not a "
                    "define-by-run function"
                )
        self._space: Any = _distributions(space, False) if isinstance(space, dict) else space
        self._points = points
        self._evaluated_rewards = evaluated_rewards
        self._sampler = sampler
        self._seed = seed
        self._study_name = study_name or "optuna"
        self._storage = storage
        self._ot_study: Any = None
        self._ot_trials: dict[str, Any] = {}
        self._completed: set[str] = set()

    @property
    def study(self) -> Any:
        """The ``optuna.Study`` (None until the first suggestion)."""
        return self._ot_study

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = mode
        if self._space:
            return False  # a space of its own: the param_space may hold constants only
        converted = _distributions(config, True)
        if not converted:
            return False
        self._space = converted
        return True

    def _study(self) -> Any:
        if self._ot_study is not None:
            return self._ot_study
        if not self._space:
            raise RuntimeError(
                "OptunaSearch has no search space: pass space= or a param_space with "
                "search-space entries (tune_ckpt.uniform, choice, ...)"
            )
        if self._mode is None:
            raise RuntimeError(
                "OptunaSearch needs a mode: OptunaSearch(metric=..., mode=...) or "
                "TuneConfig(metric=..., mode=...)"
            )
        if self._metric is None:
            if isinstance(self._mode, list):
                raise ValueError("OptunaSearch with a list of modes needs a list of metrics")
            self._metric = DEFAULT_METRIC
        modes = self._mode if isinstance(self._mode, list) else [self._mode]
        directions = ["minimize" if m == "min" else "maximize" for m in modes]
        self._ot_study = ot.create_study(
            storage=self._storage,
            sampler=self._sampler or ot.samplers.TPESampler(seed=self._seed),
            pruner=ot.pruners.NopPruner(),
            study_name=self._study_name,
            load_if_exists=True,
            directions=directions,
        )
        if self._evaluated_rewards is not None:
            for point, reward in zip(self._points, self._evaluated_rewards, strict=True):
                self.add_evaluated_point(point, reward)
        else:
            for point in self._points:
                self._ot_study.enqueue_trial(_flat(point))
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        study = self._study()
        if trial_id not in self._ot_trials:
            fixed = None if callable(self._space) else self._space
            self._ot_trials[trial_id] = study.ask(fixed_distributions=fixed)
        ot_trial = self._ot_trials[trial_id]
        if not callable(self._space):
            return _unflatten(ot_trial.params)
        captor = _SuggestCaptor(ot_trial)
        returned = self._space(captor)
        if returned is not None and (
            not isinstance(returned, dict) or not all(isinstance(k, str) for k in returned)
        ):
            raise TypeError(
                f"the define-by-run space returned {returned!r}: a dict with str keys, or None"
            )
        return _unflatten({**captor.captured, **(returned or {})})

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self._metric, list) or trial_id in self._completed:
            return  # Optuna takes no intermediate values for several objectives
        ot_trial = self._ot_trials.get(trial_id)
        value = metrics.as_score(metrics.lookup(result, self._metric or DEFAULT_METRIC))
        step = result.get(TRAINING_ITERATION)
        if ot_trial is None or value is None or not isinstance(step, int):
            return
        ot_trial.report(value, step)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed:
            logger.warning("OptunaSearch: a completion of unknown or finished trial %s", trial_id)
            return
        names: list[str] = (
            self._metric if isinstance(self._metric, list) else [self._metric or DEFAULT_METRIC]
        )
        found = [metrics.lookup(result, name) for name in names] if result else [None]
        values: Any = None
        state = ot.trial.TrialState.FAIL if error else ot.trial.TrialState.PRUNED
        if all(v is not None for v in found):
            values = found if isinstance(self._metric, list) else found[0]
            state = ot.trial.TrialState.COMPLETE
        try:
            self._ot_study.tell(ot_trial, values, state=state)
        except Exception as exc:  # e.g. a value Optuna refuses: the trial is lost, not the sweep
            logger.warning("OptunaSearch could not tell trial %s's result: %s", trial_id, exc)
        self._completed.add(trial_id)

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: Any,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        if callable(self._space):
            raise TypeError("add_evaluated_point needs a dict space, not a define-by-run function")
        study = self._study()
        state = ot.trial.TrialState.COMPLETE
        if error:
            state = ot.trial.TrialState.FAIL
        elif pruned:
            state = ot.trial.TrialState.PRUNED
        several = isinstance(value, list | tuple)
        trial = ot.trial.create_trial(
            state=state,
            value=None if several or state != ot.trial.TrialState.COMPLETE else value,
            values=list(value) if several and state == ot.trial.TrialState.COMPLETE else None,
            params=_flat(parameters),
            distributions=self._space,
            intermediate_values=dict(enumerate(intermediate_values or [])) or None,
        )
        study.add_trial(trial)

    def get_state(self) -> dict[str, Any]:
        """The study (with its sampler's random state), the trials in flight and the space,
        pickled, with the optuna version that wrote them."""
        payload = {
            "study": self._ot_study,
            "trials": self._ot_trials,
            "completed": sorted(self._completed),
            "space": None if callable(self._space) else self._space,
            "metric": self._metric,
            "mode": self._mode,
        }
        return {
            "kind": "OptunaSearch",
            "version": _STATE_VERSION,
            "optuna_version": ot.__version__,
            "pickle": base64.b64encode(pickle.dumps(payload)).decode("ascii"),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(check_state(state, "OptunaSearch", _STATE_VERSION))
        saved_with = state.get("optuna_version")
        try:
            payload = pickle.loads(base64.b64decode(state["pickle"]))
        except Exception as exc:
            raise SearcherStateError(
                f"the OptunaSearch state was saved with optuna {saved_with} and cannot be "
                f"loaded with optuna {ot.__version__} ({type(exc).__name__}: {exc}): install "
                f"optuna=={saved_with} to resume this experiment"
            ) from exc
        if saved_with != ot.__version__:
            logger.warning(
                "the OptunaSearch state was saved with optuna %s, loaded with %s",
                saved_with,
                ot.__version__,
            )
        self._ot_study = payload["study"]
        self._ot_trials = payload["trials"]
        self._completed = set(payload["completed"])
        if payload["space"] is not None:
            self._space = payload["space"]
        self._metric, self._mode = payload["metric"], payload["mode"]


def _flat(point: Mapping[str, Any]) -> dict[str, Any]:
    return metrics.flatten(point)
