"""``SearchGenerator``: what the driver talks to when it needs trial configs.

It owns one searcher (``BasicVariantGenerator`` when the user gave none), gives it the
Tuner's metric, mode and ``param_space``, counts ``num_samples`` for searchers that do not
expand the space themselves, merges their suggestions into the ``param_space``'s constants,
and saves everything needed to continue after a driver crash as one JSON-able dict.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from typing import Any

from tune_ckpt.search.basic_variant import BasicVariantGenerator
from tune_ckpt.search.searcher import Searcher, SearcherStateError, check_state
from tune_ckpt.search.variant_generator import copy_tree, is_grid, leaves, restore_tuples, where

logger = logging.getLogger(__name__)

_STATE_VERSION = 1


def _innermost(searcher: Searcher) -> Searcher:
    while isinstance(getattr(searcher, "searcher", None), Searcher):
        searcher = searcher.searcher  # type: ignore[attr-defined]  # wrappers such as ConcurrencyLimiter
    return searcher


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        target = base.get(key)
        if isinstance(value, dict) and isinstance(target, dict) and not is_grid(target):
            _merge(target, value)
        else:
            base[key] = value
    return base


class SearchGenerator:
    """Trial configs from a searcher, for the driver.

    Args:
        searcher: the ``TuneConfig(search_alg=...)``; None runs ``BasicVariantGenerator()``.
        param_space: the Tuner's space. A searcher that expands it itself (the basic
            generator) gets all of it; others get it too, and when they refuse it (they have
            a space of their own) it may only hold constants, which every suggestion carries.
        num_samples: trials in all (the basic generator: repeats of the grid).
        metric, mode: the ``TuneConfig``'s, handed to the searcher.
    """

    def __init__(
        self,
        searcher: Searcher | None,
        param_space: dict[str, Any] | None,
        num_samples: int = 1,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples={num_samples!r} is invalid: an int >= 1")
        if searcher is not None and not isinstance(searcher, Searcher):
            raise TypeError(
                f"search_alg={searcher!r} is invalid: a tune_ckpt.search.Searcher instance"
            )
        self.searcher: Searcher = searcher if searcher is not None else BasicVariantGenerator()
        self._space = param_space if param_space is not None else {}
        self._num_samples = num_samples
        self._expands_space = isinstance(_innermost(self.searcher), BasicVariantGenerator)
        took = self.searcher.set_search_properties(
            metric, mode, copy_tree(self._space), num_samples=num_samples
        )
        unresolved = leaves(self._space)
        if not took and unresolved:
            raise ValueError(
                f"{where(unresolved[0][0])} is a search-space entry, but "
                f"{type(_innermost(self.searcher)).__name__} was built with a space of its own: "
                "define the space in one place (the searcher's space or the param_space)"
            )
        self._suggested = 0
        self._finished = False
        self._warned_stateless = False

    @property
    def param_space(self) -> dict[str, Any]:
        """The Tuner's space (its constants go into every suggestion)."""
        return self._space

    @property
    def num_suggested(self) -> int:
        """Configs handed out so far."""
        return self._suggested

    def is_finished(self) -> bool:
        """True once no config will ever come again."""
        if self._finished:
            return True
        return not self._expands_space and self._suggested >= self._num_samples

    def next_config(self, trial_id: str) -> dict[str, Any] | None:
        """The config of a new trial with id ``trial_id``, or None: none now (ask again
        after a trial completes) or none ever again (``is_finished()``)."""
        if self.is_finished():
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion == Searcher.FINISHED:
            self._finished = True
            return None
        if suggestion is None:
            return None
        if not isinstance(suggestion, dict):
            raise TypeError(
                f"{type(self.searcher).__name__}.suggest returned {suggestion!r}: a dict, "
                "None or Searcher.FINISHED"
            )
        self._suggested += 1
        if self._expands_space:
            return suggestion
        config = _merge(copy_tree(self._space), copy_tree(suggestion))
        missing = leaves(config)
        if missing:
            raise ValueError(
                f"{where(missing[0][0])} is a search-space entry that "
                f"{type(self.searcher).__name__} did not suggest a value for"
            )
        return restore_tuples(config, self._space)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Every result of a trial this generator suggested."""
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Once per trial when it ends for good (TERMINATED or ERROR)."""
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # -- state ------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """A JSON-able dict: the counts and the searcher's own state."""
        return {
            "kind": "SearchGenerator",
            "version": _STATE_VERSION,
            "suggested": self._suggested,
            "finished": self._finished,
            "searcher_class": type(self.searcher).__name__,
            "searcher": self._searcher_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``get_state()``'s dict; the searcher must be built as before."""
        state = dict(check_state(state, "SearchGenerator", _STATE_VERSION))
        if state["searcher_class"] != type(self.searcher).__name__:
            raise SearcherStateError(
                f"the experiment ran with search_alg {state['searcher_class']}, not "
                f"{type(self.searcher).__name__}: restore with the same searcher"
            )
        self._restore_searcher(state["searcher"])
        self._suggested = int(state["suggested"])
        self._finished = bool(state["finished"])

    def _searcher_state(self) -> dict[str, Any] | None:
        try:
            return {"get_state": self.searcher.get_state()}
        except NotImplementedError:
            pass
        if type(self.searcher).save is not Searcher.save:  # a Ray-style save(path) only
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "searcher-state")
                self.searcher.save(path)
                with open(path, "rb") as file:
                    return {"save": base64.b64encode(file.read()).decode("ascii")}
        if not self._warned_stateless:
            self._warned_stateless = True
            logger.warning(
                "%s implements neither get_state nor save: after a driver crash it starts "
                "afresh and may suggest configs again",
                type(self.searcher).__name__,
            )
        return None

    def _restore_searcher(self, saved: dict[str, Any] | None) -> None:
        if saved is None:
            return
        if "get_state" in saved:
            self.searcher.set_state(saved["get_state"])
            return
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "searcher-state")
            with open(path, "wb") as file:
                file.write(base64.b64decode(saved["save"]))
            self.searcher.restore(path)
