"""tune_ckpt: crash- and preemption-proof trial checkpointing for sweeps on Ray.

Code written for Ray Tune's trial-checkpoint API runs after changing imports:
``ray.tune`` -> ``tune_ckpt``, ``ray.air`` -> ``tune_ckpt.air``.
"""

from tune_ckpt import result
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from tune_ckpt.errors import STORAGE_ERRORS
from tune_ckpt.result_grid import Result, ResultGrid
from tune_ckpt.search import choice, grid_search, loguniform, randint, uniform
from tune_ckpt.session import get_checkpoint, report
from tune_ckpt.trainable import Trainable, with_resources
from tune_ckpt.tuner import Tuner

__version__ = "0.1.0"

__all__ = [
    "STORAGE_ERRORS",
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Trainable",
    "TuneConfig",
    "Tuner",
    "choice",
    "get_checkpoint",
    "grid_search",
    "loguniform",
    "randint",
    "report",
    "result",
    "uniform",
    "with_resources",
]
