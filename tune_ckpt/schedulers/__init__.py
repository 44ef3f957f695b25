"""Trial schedulers with Ray Tune's names; pure decision code (no Ray).

See :mod:`tune_ckpt.schedulers.base` for the interface, the driver's duties and the saved
state's format, and :mod:`tune_ckpt.schedulers.actions` for what schedulers ask of the
driver besides their decisions.
"""

from tune_ckpt.schedulers.actions import Exploit, SaveCheckpoint, SchedulerAction, StopTrial
from tune_ckpt.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from tune_ckpt.schedulers.base import (
    FIFOScheduler,
    SchedulerContext,
    SchedulerDecision,
    StateError,
    TrialScheduler,
    TrialsView,
)
from tune_ckpt.schedulers.hyperband import HyperBandScheduler
from tune_ckpt.schedulers.median_stopping import MedianStoppingRule
from tune_ckpt.schedulers.pb2 import PB2
from tune_ckpt.schedulers.pbt import PopulationBasedTraining

__all__ = [
    "PB2",
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "Exploit",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "SaveCheckpoint",
    "SchedulerAction",
    "SchedulerContext",
    "SchedulerDecision",
    "StateError",
    "StopTrial",
    "TrialScheduler",
    "TrialsView",
]
