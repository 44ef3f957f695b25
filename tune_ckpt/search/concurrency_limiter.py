"""``ConcurrencyLimiter``: at most ``max_concurrent`` suggested trials unfinished at once."""

from __future__ import annotations

import logging
from typing import Any

from tune_ckpt.metrics import jsonable, revived
from tune_ckpt.search.searcher import Searcher, check_state

logger = logging.getLogger(__name__)

_STATE_VERSION = 1


class ConcurrencyLimiter(Searcher):
    """Wraps a searcher so that ``suggest`` returns ``None`` while ``max_concurrent`` of its
    trials are unfinished.

    With ``batch=True`` the wrapped searcher hears of completions only when the whole batch
    of ``max_concurrent`` trials has completed (all at once, in completion order), so it
    suggests the next batch knowing all of the previous one. A searcher that limits
    concurrency itself (``set_max_concurrency`` returns True) is left to do so.
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False) -> None:
        if not isinstance(searcher, Searcher):
            raise TypeError(
                f"ConcurrencyLimiter(searcher={searcher!r}) is invalid: a Searcher instance"
            )
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise ValueError(f"max_concurrent={max_concurrent!r} is invalid: an int > 0")
        if max_concurrent <= 0:
            raise ValueError(f"max_concurrent={max_concurrent!r} is invalid: an int > 0")
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.batch = bool(batch)
        self.live_trials: set[str] = set()
        self.num_unfinished_live_trials = 0
        self.cached_results: dict[str, tuple[dict[str, Any] | None, bool]] = {}
        self._limit_concurrency = not searcher.set_max_concurrency(max_concurrent)
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def mode(self) -> Any:
        return self.searcher.mode

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        self._limit_concurrency = not self.searcher.set_max_concurrency(self.max_concurrent)
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if not self._limit_concurrency:
            return self.searcher.suggest(trial_id)
        if trial_id in self.live_trials:
            raise ValueError(f"trial_id={trial_id!r} was already suggested: ids must be unique")
        if len(self.live_trials) >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion is not None and suggestion != Searcher.FINISHED:
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if not self._limit_concurrency:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id not in self.live_trials or trial_id in self.cached_results:
            return
        if not self.batch:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            self.live_trials.discard(trial_id)
            self.num_unfinished_live_trials -= 1
            return
        self.cached_results[trial_id] = (result, error)
        self.num_unfinished_live_trials -= 1
        if self.num_unfinished_live_trials > 0:
            return
        for cached_id, (cached_result, cached_error) in self.cached_results.items():
            self.searcher.on_trial_complete(cached_id, result=cached_result, error=cached_error)
            self.live_trials.discard(cached_id)
        self.cached_results = {}
        self.num_unfinished_live_trials = 0

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: Any,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        self.searcher.add_evaluated_point(parameters, value, error, pruned, intermediate_values)

    def on_pause(self, trial_id: str) -> None:
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    def get_state(self) -> dict[str, Any]:
        """This limiter's bookkeeping with the wrapped searcher's state inside."""
        return {
            "kind": "ConcurrencyLimiter",
            "version": _STATE_VERSION,
            "max_concurrent": self.max_concurrent,
            "live": sorted(self.live_trials),
            "unfinished": self.num_unfinished_live_trials,
            "cached": {k: [jsonable(r), e] for k, (r, e) in self.cached_results.items()},
            "searcher": self.searcher.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(check_state(state, "ConcurrencyLimiter", _STATE_VERSION))
        self.searcher.set_state(state["searcher"])
        self.max_concurrent = int(state["max_concurrent"])
        self.live_trials = set(state["live"])
        self.num_unfinished_live_trials = int(state["unfinished"])
        self.cached_results = {k: (revived(r), bool(e)) for k, (r, e) in state["cached"].items()}
