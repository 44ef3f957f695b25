"""The trial context: which trial this worker runs, for code inside a trainable.

``tune_ckpt.get_context()`` (Ray Tune's ``ray.tune.get_context()``) and the AIR-era
``tune_ckpt.air.session.get_trial_id()`` ... read it. The actor sets it before it builds a
trainable (so ``setup`` sees it) and whenever it switches to another trial; a worker process
hosts one trial at a time, so it is process-wide and a function trainable's thread sees it.

``get_trial_dir()`` is a local folder the trial may write into: the trial's own folder when
the experiment's storage is a local (or mounted) path, else a scratch folder on the worker's
disk (``$TMPDIR/tune_ckpt_trials/<experiment>/<trial folder>``) that is **not** uploaded;
what must survive goes into a checkpoint.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tune_ckpt.persistence import TrialContext

SCRATCH_DIR = "tune_ckpt_trials"
"""Under the system's temporary folder: trial folders of experiments on object storage."""


class TrialResources(Mapping[str, float]):
    """What one trial holds (``{"CPU": 1.0, "GPU": 0.0, ...}``), read-only.

    Ray Tune returns a ``PlacementGroupFactory``; its ``required_resources`` and ``bundles``
    are here too, with the single bundle a tune_ckpt trial has.
    """

    def __init__(self, resources: Mapping[str, float]) -> None:
        self._resources = {str(k): float(v) for k, v in resources.items()}

    def __getitem__(self, key: str) -> float:
        return self._resources[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    @property
    def required_resources(self) -> dict[str, float]:
        return dict(self._resources)

    @property
    def bundles(self) -> list[dict[str, float]]:
        return [dict(self._resources)]

    def __repr__(self) -> str:
        return f"TrialResources({self._resources!r})"


class TuneContext:
    """The running trial, as Ray Tune's ``TuneContext`` presents it."""

    def __init__(self, ctx: TrialContext) -> None:
        self._ctx = ctx

    def get_trial_id(self) -> str:
        return self._ctx.trial_id

    def get_trial_name(self) -> str:
        return self._ctx.trial_name or posixpath.basename(self._ctx.trial_dir)

    def get_experiment_name(self) -> str:
        return posixpath.basename(self._ctx.experiment.root.replace(os.sep, "/").rstrip("/"))

    def get_trial_resources(self) -> TrialResources:
        return TrialResources(self._ctx.resources or {"CPU": 1.0})

    def get_trial_dir(self) -> str:
        """A local folder for this trial's files (created on first call); see the module
        docs for what happens to them on object storage."""
        ctx = self._ctx
        path = ctx.experiment.local_os_path(ctx.trial_dir)
        if path is None:
            parts = [self.get_experiment_name(), *ctx.trial_dir.split("/")]
            path = os.path.join(tempfile.gettempdir(), SCRATCH_DIR, *parts)
        os.makedirs(path, exist_ok=True)
        return path


_current: TrialContext | None = None


def activate(ctx: TrialContext | None) -> None:
    """Make ``ctx`` the trial this process runs (the actor's call)."""
    global _current
    _current = ctx


def current() -> TrialContext | None:
    return _current


def get_context() -> TuneContext:
    """The context of the trial running in this process.

    Raises RuntimeError outside a trainable run by tune_ckpt.
    """
    if _current is None:
        raise RuntimeError(
            "get_context() can only be called inside a trainable run by tune_ckpt (Tuner.fit)"
        )
    return TuneContext(_current)


def get_trial_id() -> str:
    return get_context().get_trial_id()


def get_trial_name() -> str:
    return get_context().get_trial_name()


def get_trial_dir() -> str:
    return get_context().get_trial_dir()


def get_trial_resources() -> TrialResources:
    return get_context().get_trial_resources()


def get_experiment_name() -> str:
    return get_context().get_experiment_name()
