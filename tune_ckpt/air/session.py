"""``ray.air.session``: ``from tune_ckpt.air import session`` then ``session.report(...)``."""

from tune_ckpt.session import get_checkpoint, report

__all__ = ["get_checkpoint", "report"]
