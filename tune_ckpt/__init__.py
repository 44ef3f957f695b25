"""tune_ckpt: crash- and preemption-proof trial checkpointing for sweeps on Ray.

Code written for Ray Tune's trial-checkpoint API runs after changing imports:
``ray.tune`` -> ``tune_ckpt``, ``ray.air`` -> ``tune_ckpt.air``.
"""

from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from tune_ckpt.errors import STORAGE_ERRORS
from tune_ckpt.search import choice, grid_search, loguniform, randint, uniform

__version__ = "0.1.0"

__all__ = [
    "STORAGE_ERRORS",
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "RunConfig",
    "TuneConfig",
    "choice",
    "grid_search",
    "loguniform",
    "randint",
    "uniform",
]
