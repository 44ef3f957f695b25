"""Loggers (Ray Tune's ``ray.tune.logger``): ``LoggerCallback``, the base class, and
``TBXLoggerCallback`` (TensorBoard, the optional ``tensorboard`` extra).

``result.json``, ``progress.csv`` and ``params.json`` are always written into each trial
folder by tune_ckpt itself, so Ray Tune's ``JsonLoggerCallback`` and ``CSVLoggerCallback``
have no counterpart here. ``TBXLoggerCallback`` is imported on first use, so this package
imports without tensorboardX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tune_ckpt.logger.base import LoggerCallback

if TYPE_CHECKING:
    from tune_ckpt.logger.tensorboardx import TBXLoggerCallback

__all__ = ["LoggerCallback", "TBXLoggerCallback"]


def __getattr__(name: str) -> Any:
    if name == "TBXLoggerCallback":
        value = importlib.import_module("tune_ckpt.logger.tensorboardx").TBXLoggerCallback
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tune_ckpt.logger' has no attribute {name!r}")
