"""``ray.air.checkpoint``: ``from tune_ckpt.air.checkpoint import Checkpoint``."""

from tune_ckpt.checkpoint import Checkpoint

__all__ = ["Checkpoint"]
