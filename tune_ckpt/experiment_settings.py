"""The run and tune settings an experiment keeps in its journal header, so ``Tuner.restore``
runs it on as it was started: plain JSON, except a stop callable, a scheduler and a search
algorithm (with the param_space it completes), each pickled into a file of its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tune_ckpt.config import (
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    SpotConfig,
    StorageRetry,
    TuneConfig,
)
from tune_ckpt.search import space_structure
from tune_ckpt.storage.location import StorageLocation

STOP_FILE = "stop_criterion.pkl"
SCHEDULER_FILE = "scheduler.pkl"
SEARCH_FILE = "search_alg.pkl"
"""``{"search_alg": <the searcher as given, before any use>, "param_space": <the space>}``:
the space too, since a searcher's suggestions are completed with its constants and a
restore need not re-specify it."""


def experiment_settings(
    run_config: RunConfig,
    tune_config: TuneConfig,
    param_space: dict[str, Any],
    experiment: StorageLocation,
) -> dict[str, Any]:
    """The run and tune settings a restore needs, as JSON (a stop callable is pickled
    into its own file, the only non-JSON state)."""
    rc = run_config
    stop: Any = dict(rc.stop) if isinstance(rc.stop, Mapping) else None
    if callable(rc.stop):
        from ray import cloudpickle

        experiment.write_bytes(STOP_FILE, cloudpickle.dumps(rc.stop))
        stop = STOP_FILE
    return {
        "run_config": {
            "stop": stop,
            "checkpoint_config": dataclasses.asdict(rc.checkpoint_config),
            "failure_config": dataclasses.asdict(rc.failure_config),
            "verbose": rc.verbose,
            "checkpoint_transfer": rc.checkpoint_transfer,
            "storage_retry": dataclasses.asdict(rc.storage_retry),
            "spot": dataclasses.asdict(rc.spot) if rc.spot is not None else None,
        },
        # The scheduler is an object: pickled into its own file, like a stop callable.
        "tune_config": {
            **_tune_settings(tune_config),
            "scheduler": _save_scheduler(tune_config, experiment),
            "search_alg": _save_search(tune_config, param_space, experiment),
        },
        # What a restore checks a re-specified param_space against.
        "param_space_structure": space_structure.describe(param_space),
    }


def _save_scheduler(tune_config: TuneConfig, experiment: StorageLocation) -> str | None:
    scheduler = tune_config.scheduler
    if scheduler is None:
        return None
    from ray import cloudpickle

    experiment.write_bytes(SCHEDULER_FILE, cloudpickle.dumps(scheduler))
    return SCHEDULER_FILE


def _save_search(
    tune_config: TuneConfig, param_space: dict[str, Any], experiment: StorageLocation
) -> str | None:
    if tune_config.search_alg is None:
        return None
    from ray import cloudpickle

    data = {"search_alg": tune_config.search_alg, "param_space": param_space}
    experiment.write_bytes(SEARCH_FILE, cloudpickle.dumps(data))
    return SEARCH_FILE


_NOT_PERSISTED = ("trial_name_creator", "trial_dirname_creator", "scheduler", "search_alg")
"""TuneConfig fields the journal header records as None: functions only needed when trials
are created (their names and folders are stored with each trial), which JSON cannot hold,
and the scheduler and search algorithm (pickled into files of their own, see
``_save_scheduler`` and ``_save_search``)."""


def _tune_settings(tune_config: TuneConfig) -> dict[str, Any]:
    """The TuneConfig as the journal header holds it."""
    return {
        f.name: None if f.name in _NOT_PERSISTED else getattr(tune_config, f.name)
        for f in dataclasses.fields(tune_config)
    }


def restored_settings(
    header: dict[str, Any], experiment: StorageLocation
) -> tuple[RunConfig, TuneConfig]:
    """The RunConfig and TuneConfig an experiment was started with, from its journal."""
    rc = dict(header.get("run_config") or {})
    stop = rc.get("stop")
    if stop == STOP_FILE:
        from ray import cloudpickle

        stop = cloudpickle.loads(experiment.read_bytes(STOP_FILE))
    run_config = RunConfig(
        stop=stop,
        checkpoint_config=CheckpointConfig(**rc.get("checkpoint_config", {})),
        failure_config=FailureConfig(**rc.get("failure_config", {})),
        verbose=rc.get("verbose", 1),
        checkpoint_transfer=rc.get("checkpoint_transfer", "auto"),
        storage_retry=StorageRetry(**rc.get("storage_retry", {})),
        spot=SpotConfig(**rc["spot"]) if rc.get("spot") else None,
    )
    tc = dict(header.get("tune_config") or {})
    if tc.get("scheduler") == SCHEDULER_FILE:
        from ray import cloudpickle

        tc["scheduler"] = cloudpickle.loads(experiment.read_bytes(SCHEDULER_FILE))
    if tc.get("search_alg") == SEARCH_FILE:
        tc["search_alg"] = restored_search(experiment)["search_alg"]
    return run_config, TuneConfig(**tc)


def restored_search(experiment: StorageLocation) -> dict[str, Any]:
    """The search algorithm as the experiment was started with it, and its param_space
    (see ``SEARCH_FILE``)."""
    from ray import cloudpickle

    loaded: dict[str, Any] = cloudpickle.loads(experiment.read_bytes(SEARCH_FILE))
    return loaded
