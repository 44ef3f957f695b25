"""``ray.air.session``: ``from tune_ckpt.air import session`` then ``session.report(...)``,
``session.get_trial_id()``, ..."""

from tune_ckpt.context import (
    get_experiment_name,
    get_trial_dir,
    get_trial_id,
    get_trial_name,
    get_trial_resources,
)
from tune_ckpt.session import get_checkpoint, report

__all__ = [
    "get_checkpoint",
    "get_experiment_name",
    "get_trial_dir",
    "get_trial_id",
    "get_trial_name",
    "get_trial_resources",
    "report",
]
