"""``ray.air`` names: ``from tune_ckpt import air`` then ``air.RunConfig(...)``."""

from tune_ckpt.air import checkpoint, session
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import CheckpointConfig, FailureConfig, RunConfig

__all__ = ["Checkpoint", "CheckpointConfig", "FailureConfig", "RunConfig", "checkpoint", "session"]
