"""Stopping, concurrency limits, per-trial resources and actor reuse."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

import tune_ckpt as tune
from tune_ckpt.air import session

from ._support import iterations, run_config

COUNTER = "tune_ckpt_it_concurrency"


@ray.remote(num_cpus=0)
class ConcurrencyCounter:
    """Counts trials inside their run (enter ... leave) and remembers the peak."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.entered = 0
        self.changed = asyncio.Condition()

    async def enter(self, crowd: int, timeout: float) -> None:
        """Count a trial in, then hold it until ``crowd`` trials are in at once or
        ``timeout`` passes: a runner that started too many would be caught here."""
        async with self.changed:
            self.current += 1
            self.entered += 1
            self.peak = max(self.peak, self.current)
            self.changed.notify_all()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: self.current >= crowd), timeout
                )

    async def leave(self) -> None:
        async with self.changed:
            self.current -= 1
            self.changed.notify_all()

    async def stats(self) -> tuple[int, int]:
        return self.peak, self.entered


@pytest.fixture
def counter() -> Iterator[Any]:
    """A fresh named ConcurrencyCounter actor that trials look up by name."""
    actor = ConcurrencyCounter.options(name=COUNTER).remote()
    ray.get(actor.stats.remote())
    yield actor
    ray.kill(actor)


class Tracked(tune.Trainable):
    """Enters the counter in setup (waiting there for company, see enter), leaves when done."""

    def setup(self, config: dict[str, Any]) -> None:
        self.counter = ray.get_actor(COUNTER)
        ray.get(self.counter.enter.remote(crowd=2, timeout=config.get("timeout", 1.0)))

    def step(self) -> dict[str, Any]:
        ray.get(self.counter.leave.remote())
        return {"done": True}


class TwoCpus(Tracked):
    """Tracked asking for two CPUs through default_resource_request."""

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> dict[str, float]:
        return {"cpu": 2}


def tracked_fn(config: dict[str, Any]) -> None:
    """Function twin of Tracked."""
    counter = ray.get_actor(COUNTER)
    ray.get(counter.enter.remote(crowd=2, timeout=config.get("timeout", 1.0)))
    ray.get(counter.leave.remote())
    session.report({"done": True})


class Counting(tune.Trainable):
    def setup(self, config: dict[str, Any]) -> None:
        self.count = 0

    def step(self) -> dict[str, Any]:
        self.count += self.config.get("inc", 1)
        return {"count": self.count}


class Reusable(tune.Trainable):
    """Reports how often setup ran in its process and how many trials its instance served."""

    setups = 0  # per worker process

    def setup(self, config: dict[str, Any]) -> None:
        type(self).setups += 1
        self.served = 1

    def step(self) -> dict[str, Any]:
        return {
            "setups": type(self).setups,
            "served": self.served,
            "tag": self.config["tag"],
            "done": True,
        }

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self.served += 1
        return True


class NotReusable(Reusable):
    def reset_config(self, new_config: dict[str, Any]) -> bool:
        return False


def test_stop_dict(tmp_path: Path) -> None:
    """stop={"count": 10} ends the trial at the first result with count >= 10."""
    results = tune.Tuner(
        Counting,
        param_space={"inc": 3},
        run_config=run_config(tmp_path, stop={"count": 10}),
    ).fit()
    assert results[0].metrics["count"] == 12
    assert iterations(results[0].path) == [1, 2, 3, 4]


def test_stop_callable(tmp_path: Path) -> None:
    """A stop callable gets (trial_id, result) and ends the trial when it returns True."""
    seen: list[tuple[str, str]] = []

    def stopper(trial_id: str, result: dict[str, Any]) -> bool:
        seen.append((trial_id, result["trial_id"]))
        return result["training_iteration"] >= (2 if result["count"] < 10 else 1)

    results = tune.Tuner(
        Counting,
        param_space={"inc": tune.grid_search([1, 20])},
        run_config=run_config(tmp_path, stop=stopper),
    ).fit()
    assert [r.metrics["training_iteration"] for r in results] == [2, 1]
    # Called once per result (2 + 1), with the id of the trial that reported it.
    assert len(seen) == 3
    assert all(given == reported for given, reported in seen)
    assert {given for given, _ in seen} == {r.metrics["trial_id"] for r in results}


def test_max_concurrent_trials(tmp_path: Path, counter: Any) -> None:
    """max_concurrent_trials=1 runs one trial at a time although two CPUs are free."""
    results = tune.Tuner(
        Tracked,
        param_space={"i": tune.grid_search([0, 1, 2])},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=run_config(tmp_path),
    ).fit()
    assert results.num_errors == 0, results.errors
    assert ray.get(counter.stats.remote()) == (1, 3)


def test_without_limit_trials_share_the_cpus(tmp_path: Path, counter: Any) -> None:
    """Without a limit two one-CPU trials do run at the same time on two CPUs."""
    results = tune.Tuner(
        Tracked,
        # Each waits for the other (up to a minute): they meet only if both run at once.
        param_space={"i": tune.grid_search([0, 1]), "timeout": 60.0},
        run_config=run_config(tmp_path),
    ).fit()
    assert results.num_errors == 0, results.errors
    assert ray.get(counter.stats.remote()) == (2, 2)


@pytest.mark.parametrize(
    "trainable",
    [
        tune.with_resources(Tracked, {"cpu": 2}),
        TwoCpus,
        tune.with_resources(tracked_fn, {"cpu": 2}),
    ],
    ids=["with_resources-class", "default_resource_request", "with_resources-function"],
)
def test_two_cpu_trials_run_one_at_a_time(tmp_path: Path, counter: Any, trainable: Any) -> None:
    """Trials asking for 2 CPUs on a 2-CPU Ray run one at a time."""
    results = tune.Tuner(
        trainable,
        param_space={"i": tune.grid_search([0, 1])},
        run_config=run_config(tmp_path),
    ).fit()
    assert results.num_errors == 0, results.errors
    assert ray.get(counter.stats.remote()) == (1, 2)


def test_request_larger_than_cluster_fails_early(tmp_path: Path) -> None:
    """A trial asking for more CPUs than the cluster has fails fit() with a clear message."""
    with pytest.raises(ValueError, match="more than the whole cluster"):
        tune.Tuner(
            tune.with_resources(Counting, {"cpu": 3}),
            run_config=run_config(tmp_path, stop={"training_iteration": 1}),
        ).fit()


@pytest.mark.parametrize(
    ("reuse_actors", "trainable", "processes", "setups", "served"),
    [
        (True, Reusable, 1, [1, 1, 1], [1, 2, 3]),
        (True, NotReusable, 1, [1, 2, 3], [1, 1, 1]),
        (None, Reusable, 1, [1, 2, 3], [1, 1, 1]),
        (False, Reusable, 3, [1, 1, 1], [1, 1, 1]),
    ],
    ids=["true-reset_config", "true-reset_config-false", "default", "false"],
)
def test_reuse_actors(
    tmp_path: Path,
    reuse_actors: bool | None,
    trainable: type[tune.Trainable],
    processes: int,
    setups: list[int],
    served: list[int],
) -> None:
    """reuse_actors: True reuses the instance (reset_config), None the process, False neither."""
    results = tune.Tuner(
        trainable,
        param_space={"tag": tune.grid_search(["a", "b", "c"])},
        tune_config=tune.TuneConfig(reuse_actors=reuse_actors, max_concurrent_trials=1),
        run_config=run_config(tmp_path),
    ).fit()
    assert results.num_errors == 0, results.errors
    assert [r.metrics["tag"] for r in results] == ["a", "b", "c"]
    assert len({r.metrics["trial_id"] for r in results}) == 3
    assert len({r.metrics["pid"] for r in results}) == processes
    assert os.getpid() not in {r.metrics["pid"] for r in results}
    assert [r.metrics["setups"] for r in results] == setups
    assert [r.metrics["served"] for r in results] == served
