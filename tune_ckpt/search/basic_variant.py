"""``BasicVariantGenerator``: grid and random search, what a sweep without a searcher runs."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from tune_ckpt.search.searcher import Searcher, check_state
from tune_ckpt.search.variant_generator import VariantPlan

_STATE_VERSION = 1


class BasicVariantGenerator(Searcher):
    """Expands the ``param_space`` into ``num_samples`` x grid configs, in the order of
    ``generate_configs`` (with the same ``random_state`` seed, the same configs).

    Args:
        points_to_evaluate: configs (possibly partial) to run first; each takes one of the
            ``num_samples``, its missing values drawn from the space.
        max_concurrent: at most this many suggested trials unfinished at once (0: no limit).
        random_state: an int seed or a ``random.Random`` for reproducible sweeps.
    """

    def __init__(
        self,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        max_concurrent: int = 0,
        random_state: int | random.Random | None = None,
    ) -> None:
        super().__init__()
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise ValueError(f"max_concurrent={max_concurrent!r} is invalid: an int >= 0")
        if max_concurrent < 0:
            raise ValueError(f"max_concurrent={max_concurrent!r} is invalid: an int >= 0")
        if isinstance(random_state, random.Random):
            self._rng = random_state
        elif random_state is None or (
            isinstance(random_state, int) and not isinstance(random_state, bool)
        ):
            self._rng = random.Random(random_state)
        else:
            raise ValueError(
                f"random_state={random_state!r} is invalid: an int seed, a random.Random or None"
            )
        for index, point in enumerate(points_to_evaluate or ()):
            if not isinstance(point, Mapping):
                raise ValueError(f"points_to_evaluate[{index}]={point!r} is invalid: a dict")
        # Their keys are checked against the space in set_search_properties.
        self._points = [dict(point) for point in points_to_evaluate or ()]
        self.max_concurrent = max_concurrent
        self._plan: VariantPlan | None = None
        self._next = 0
        self._live: set[str] = set()

    @property
    def total_samples(self) -> int:
        """How many configs this generator suggests in all (0 before the space is set)."""
        return self._plan.total if self._plan else 0

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the param_space and ``spec["num_samples"]`` (default 1)."""
        self._plan = VariantPlan(config, spec.get("num_samples", 1), self._points)
        self._metric, self._mode = metric, mode
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._plan is None:
            raise RuntimeError(
                "BasicVariantGenerator has no search space: call "
                "set_search_properties(metric, mode, param_space, num_samples=...) first"
            )
        if self._next >= self._plan.total:
            return Searcher.FINISHED
        if self.max_concurrent and len(self._live) >= self.max_concurrent:
            return None
        config = self._plan.variant(self._next, self._rng)
        self._next += 1
        self._live.add(trial_id)
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._live.discard(trial_id)

    def get_state(self) -> dict[str, Any]:
        version, internal, gauss_next = self._rng.getstate()
        return {
            "kind": "BasicVariantGenerator",
            "version": _STATE_VERSION,
            "next": self._next,
            "live": sorted(self._live),
            "rng": [version, list(internal), gauss_next],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(check_state(state, "BasicVariantGenerator", _STATE_VERSION))
        version, internal, gauss_next = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss_next))
        self._next = int(state["next"])
        self._live = set(state["live"])
