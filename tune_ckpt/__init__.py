"""tune_ckpt: crash- and preemption-proof trial checkpointing for sweeps on Ray.

Code written for Ray Tune's trial-checkpoint API runs after changing imports:
``ray.tune`` -> ``tune_ckpt``, ``ray.air`` -> ``tune_ckpt.air``.

The names below are imported on first use (PEP 562): a trial's worker process imports
``tune_ckpt.actor`` and what it needs, not the driver's runner, progress display and
result grid, which cuts the start of every new worker process (about 0.25 s of imports).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the eager imports, for type checkers and IDEs
    from tune_ckpt import result
    from tune_ckpt.callback import Callback
    from tune_ckpt.checkpoint import Checkpoint
    from tune_ckpt.config import (
        CheckpointConfig,
        FailureConfig,
        RunConfig,
        SpotConfig,
        StorageRetry,
        TuneConfig,
        Verbosity,
    )
    from tune_ckpt.context import TuneContext, get_context
    from tune_ckpt.errors import STORAGE_ERRORS, TuneError
    from tune_ckpt.result_grid import Result, ResultGrid
    from tune_ckpt.run_api import ExperimentAnalysis, run
    from tune_ckpt.search import (
        choice,
        grid_search,
        lograndint,
        loguniform,
        qlograndint,
        qloguniform,
        qrandint,
        qrandn,
        quniform,
        randint,
        randn,
        sample_from,
        uniform,
    )
    from tune_ckpt.session import get_checkpoint, report
    from tune_ckpt.shared_objects import with_parameters
    from tune_ckpt.trainable import Trainable, with_resources
    from tune_ckpt.tuner import Tuner

__version__ = "0.1.0"

_HOMES = {
    "Callback": "tune_ckpt.callback",
    "Checkpoint": "tune_ckpt.checkpoint",
    "CheckpointConfig": "tune_ckpt.config",
    "FailureConfig": "tune_ckpt.config",
    "RunConfig": "tune_ckpt.config",
    "StorageRetry": "tune_ckpt.config",
    "SpotConfig": "tune_ckpt.config",
    "TuneConfig": "tune_ckpt.config",
    "Verbosity": "tune_ckpt.config",
    "STORAGE_ERRORS": "tune_ckpt.errors",
    "TuneContext": "tune_ckpt.context",
    "get_context": "tune_ckpt.context",
    "TuneError": "tune_ckpt.errors",
    "ExperimentAnalysis": "tune_ckpt.run_api",
    "run": "tune_ckpt.run_api",
    "Result": "tune_ckpt.result_grid",
    "ResultGrid": "tune_ckpt.result_grid",
    "choice": "tune_ckpt.search",
    "grid_search": "tune_ckpt.search",
    "loguniform": "tune_ckpt.search",
    "randint": "tune_ckpt.search",
    "uniform": "tune_ckpt.search",
    "lograndint": "tune_ckpt.search",
    "qlograndint": "tune_ckpt.search",
    "qloguniform": "tune_ckpt.search",
    "qrandint": "tune_ckpt.search",
    "qrandn": "tune_ckpt.search",
    "quniform": "tune_ckpt.search",
    "randn": "tune_ckpt.search",
    "sample_from": "tune_ckpt.search",
    "get_checkpoint": "tune_ckpt.session",
    "report": "tune_ckpt.session",
    "Trainable": "tune_ckpt.trainable",
    "with_resources": "tune_ckpt.trainable",
    "Tuner": "tune_ckpt.tuner",
    "with_parameters": "tune_ckpt.shared_objects",
}

__all__ = [
    "STORAGE_ERRORS",
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "ExperimentAnalysis",
    "FailureConfig",
    "Result",
    "ResultGrid",
    "RunConfig",
    "SpotConfig",
    "StorageRetry",
    "Trainable",
    "TuneConfig",
    "TuneContext",
    "TuneError",
    "Tuner",
    "Verbosity",
    "choice",
    "get_checkpoint",
    "get_context",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "report",
    "result",
    "run",
    "sample_from",
    "uniform",
    "with_parameters",
    "with_resources",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        if name == "result":
            return importlib.import_module("tune_ckpt.result")
        raise AttributeError(f"module 'tune_ckpt' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
