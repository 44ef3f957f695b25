"""``Searcher``: the interface of search algorithms, with Ray Tune's names and contract."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

from tune_ckpt.errors import TuneCkptError

_MODES = ("min", "max")


class SearcherStateError(TuneCkptError, ValueError):
    """A saved searcher state that cannot be loaded (another format, kind or library)."""


class Searcher:
    """Suggests trial configs and learns from their results.

    The contract (Ray Tune's ``ray.tune.search.Searcher``; subclasses port by changing
    imports):

    - ``__init__(metric=None, mode=None)``: ``metric`` is a result name (nested names use
      ``/``) or a list of them; ``mode`` is ``"min"``/``"max"`` or a list of the same length.
      Subclasses call ``super().__init__(metric=..., mode=...)``.
    - ``set_search_properties(metric, mode, config, **spec) -> bool``: called once before
      the first ``suggest`` with the Tuner's metric, mode and ``param_space`` (``spec`` holds
      ``num_samples``). Return True when the searcher took them, False when it already has a
      space of its own (then the ``param_space`` may only hold constants).
    - ``suggest(trial_id) -> dict | None | Searcher.FINISHED``: the config for a new trial
      with this id; ``None`` means "nothing now, ask again later" (e.g. a concurrency limit);
      ``FINISHED`` means no more trials will ever come from this searcher.
    - ``on_trial_result(trial_id, result)``: every intermediate result of a suggested trial.
      The result may lack the metric or hold NaN.
    - ``on_trial_complete(trial_id, result=None, error=False)``: once per suggested trial,
      when it ends: ``result`` is its last result (None if it never reported), ``error``
      whether it failed for good.
    - ``add_evaluated_point(parameters, value, error=False, pruned=False,
      intermediate_values=None)``: a point evaluated outside this sweep, where supported.
    - ``get_state() -> dict`` / ``set_state(state)``: everything needed to continue after a
      driver crash on a searcher built with the same arguments. The dict is JSON-able, with
      a ``"version"`` field; a library's own objects travel as base64-encoded pickles inside
      it. ``save(path)`` / ``restore(path)`` write and read that dict as a JSON file.
    - ``set_max_concurrency(n) -> bool``: True if the searcher limits concurrency itself
      (then ``ConcurrencyLimiter`` leaves it to the searcher).
    """

    FINISHED = "FINISHED"

    def __init__(self, metric: str | list[str] | None = None, mode: str | list[str] | None = None):
        check_metric_mode(metric, mode, type(self).__name__)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> Any:
        """The result name (or names) the searcher optimises."""
        return self._metric

    @property
    def mode(self) -> Any:
        """``"min"`` or ``"max"`` (or a list of them, one per metric)."""
        return self._mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and param_space; False when it cannot."""
        return False

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config, ``None`` (not now) or ``Searcher.FINISHED`` (never again)."""
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """An intermediate result of a suggested trial; optional to handle."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """A suggested trial ended (``error``: it failed for good)."""
        raise NotImplementedError

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: Any,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Tell the searcher about a point evaluated elsewhere, where it supports that."""
        raise NotImplementedError

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """True if this searcher limits concurrency itself."""
        return False

    def on_pause(self, trial_id: str) -> None:
        """A scheduler paused the trial (it keeps its suggestion)."""

    def on_unpause(self, trial_id: str) -> None:
        """A paused trial runs again."""

    def get_state(self) -> dict[str, Any]:
        """The searcher's state as a JSON-able dict with a ``"version"``."""
        raise NotImplementedError(f"{type(self).__name__} cannot save its state")

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``get_state()``'s dict."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore a state")

    def save(self, checkpoint_path: str) -> None:
        """Write ``get_state()`` to ``checkpoint_path`` as JSON, atomically."""
        folder = os.path.dirname(os.path.abspath(checkpoint_path))
        temporary = os.path.join(folder, f".{uuid.uuid4().hex}.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(self.get_state(), file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Read a file written by ``save`` and continue from it."""
        with open(checkpoint_path, encoding="utf-8") as file:
            try:
                state = json.load(file)
            except ValueError as exc:
                raise SearcherStateError(
                    f"{checkpoint_path} is not a saved searcher state ({exc})"
                ) from exc
        self.set_state(state)


def check_metric_mode(metric: Any, mode: Any, owner: str) -> None:
    """Ray Tune's rules for ``metric``/``mode``: a name and ``"min"``/``"max"``, or lists
    of the same length (``"obs"`` allowed in lists: observed, not optimised)."""
    if isinstance(mode, list):
        if not isinstance(metric, list) or len(metric) != len(mode):
            raise ValueError(
                f"{owner}(metric={metric!r}, mode={mode!r}) is invalid: a list of modes "
                "needs a list of metrics of the same length"
            )
        for index, item in enumerate(mode):
            if item not in (*_MODES, "obs"):
                raise ValueError(
                    f"{owner}(mode[{index}]={item!r}) is invalid: 'min', 'max' or 'obs'"
                )
    elif mode is not None and mode not in _MODES:
        raise ValueError(f"{owner}(mode={mode!r}) is invalid: 'min', 'max' or None")
    names = metric if isinstance(metric, list) else [metric]
    for name in names:
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{owner}(metric={metric!r}) is invalid: a result name or a list")
    if isinstance(metric, list) and not isinstance(mode, list) and mode is not None:
        raise ValueError(
            f"{owner}(metric={metric!r}, mode={mode!r}) is invalid: several metrics need a "
            "list of modes"
        )


def check_state(state: Any, kind: str, version: int) -> Mapping[str, Any]:
    """``state`` if it is a dict saved by ``kind`` in format ``version``; else a
    SearcherStateError saying what was found."""
    if not isinstance(state, Mapping):
        raise SearcherStateError(f"{kind} state={state!r:.80} is invalid: a dict from get_state")
    if state.get("kind") != kind:
        raise SearcherStateError(
            f"the saved searcher state is from {state.get('kind')!r}, not {kind!r}: restore "
            "with the searcher the experiment was run with"
        )
    if state.get("version") != version:
        raise SearcherStateError(
            f"{kind} state version {state.get('version')!r} cannot be read by this "
            f"tune_ckpt (it reads version {version})"
        )
    return state
