"""validate_save_restore: passes for trainables that restore their state, explains failures."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt.air import session
from tune_ckpt.air.checkpoint import Checkpoint
from tune_ckpt.errors import TuneCkptError
from tune_ckpt.utils import validate_save_restore


class GoodDir(tune.Trainable):
    """A deterministic counter with a directory checkpoint."""

    def setup(self, config: dict[str, Any]) -> None:
        self.value = config.get("start", 0)

    def step(self) -> dict[str, Any]:
        self.value = self.value * 2 + 1
        return {"value": self.value}

    def save_checkpoint(self, checkpoint_dir: str) -> str:
        with open(os.path.join(checkpoint_dir, "value"), "w") as f:
            f.write(str(self.value))
        return checkpoint_dir

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "value")) as f:
            self.value = int(f.read())


class GoodDict(GoodDir):
    """The same counter with a dict checkpoint."""

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:  # type: ignore[override]
        return {"value": self.value}

    def load_checkpoint(self, checkpoint: Any) -> None:
        self.value = checkpoint["value"]


class RestoresNothing(GoodDict):
    """load_checkpoint forgets to restore the state."""

    def load_checkpoint(self, checkpoint: Any) -> None:
        pass


class ForgetsIteration(GoodDict):
    """Overrides restore() without the base class, so the iteration count starts over."""

    def restore(self, checkpoint: Any, state: Any) -> None:
        self.load_checkpoint(checkpoint)


class Noisy(GoodDict):
    """Restores its state but adds noise to every result."""

    def step(self) -> dict[str, Any]:
        return {**super().step(), "noise": random.random()}


class NoisyState(Noisy):
    """Noisy results, and noise in its checkpoint too: neither state nor results compare."""

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:  # type: ignore[override]
        return {"value": self.value, "salt": random.random()}


class ReportsRestoredFrom(GoodDict):
    """Reports the iteration it was restored from (0 before any restore), as
    tests/fault/_trainables.py does: results differ after a restore, the state does not."""

    def setup(self, config: dict[str, Any]) -> None:
        super().setup(config)
        self.restored_from = 0

    def step(self) -> dict[str, Any]:
        return {**super().step(), "restored_from": self.restored_from}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:  # type: ignore[override]
        return {"value": self.value, "iteration": self.iteration}

    def load_checkpoint(self, checkpoint: Any) -> None:
        super().load_checkpoint(checkpoint)
        self.restored_from = checkpoint["iteration"]


class Stamped(GoodDir):
    """Writes the time into each checkpoint: the state cannot compare, the results do."""

    def save_checkpoint(self, checkpoint_dir: str) -> str:
        with open(os.path.join(checkpoint_dir, "saved_at"), "w") as f:
            f.write(repr(time.time()))
        return super().save_checkpoint(checkpoint_dir)


def forgetful_fn(config: dict[str, Any]) -> None:
    """A function trainable that ignores get_checkpoint(): it restores nothing."""
    value = 0
    while True:
        value += 3
        session.report(
            {"value": value}, checkpoint=lambda v=value: Checkpoint.from_dict({"value": v})
        )


def counting_fn(config: dict[str, Any]) -> None:
    """A function trainable that resumes from get_checkpoint()."""
    checkpoint = session.get_checkpoint()
    value = checkpoint.to_dict()["value"] if checkpoint else 0
    while True:
        value += 3
        session.report(
            {"value": value}, checkpoint=lambda v=value: Checkpoint.from_dict({"value": v})
        )


@pytest.mark.parametrize("use_object_store", [False, True])
@pytest.mark.parametrize("trainable", [GoodDir, GoodDict])
def test_correct_class_passes(trainable: type[tune.Trainable], use_object_store: bool) -> None:
    """A class that saves and restores its state passes in both transfer modes."""
    assert validate_save_restore(trainable, {"start": 1}, use_object_store=use_object_store)


@pytest.mark.parametrize("use_object_store", [False, True])
def test_class_restoring_nothing_fails(use_object_store: bool) -> None:
    """A load_checkpoint that restores nothing raises an AssertionError naming the metric."""
    with pytest.raises(AssertionError) as info:
        validate_save_restore(RestoresNothing, use_object_store=use_object_store)
    message = str(info.value)
    assert isinstance(info.value, TuneCkptError)
    assert "RestoresNothing" in message
    assert "different metrics at iteration 4" in message
    assert "differs from the one restored in 'value'" in message
    # value after 4 steps is 15; restored from nothing it is 1.
    assert "'value': (15, 1)" in message


def test_wrong_iteration_counter_fails() -> None:
    """A restored trainable that does not continue at iterations 4 and 5 fails, saying so."""
    with pytest.raises(
        AssertionError, match=r"continued at iterations \[1, 2\], expected \[4, 5\]"
    ):
        validate_save_restore(ForgetsIteration)


@pytest.mark.parametrize("use_object_store", [False, True])
@pytest.mark.parametrize("trainable", [ReportsRestoredFrom, Noisy, Stamped])
def test_restored_state_passes_whatever_the_results(
    trainable: type[tune.Trainable], use_object_store: bool
) -> None:
    """The state decides: a trainable reporting {"restored_from": 3} after the restore (0
    before), or noise, passes because its checkpoint comes back identical; one stamping its
    checkpoints passes because its results match."""
    assert validate_save_restore(trainable, {"start": 1}, use_object_store=use_object_store)


def test_non_deterministic_needs_compare_results_false() -> None:
    """Noise in both the checkpoint and the results fails, and passes with
    compare_results=False."""
    with pytest.raises(AssertionError, match=r"differs from the one restored in 'salt'.*noise"):
        validate_save_restore(NoisyState)
    assert validate_save_restore(NoisyState, compare_results=False)


def test_function_trainable_passes() -> None:
    """A function trainable resuming from get_checkpoint() passes too."""
    assert validate_save_restore(counting_fn)
    assert validate_save_restore(counting_fn, use_object_store=True)


@pytest.mark.parametrize("use_object_store", [False, True])
def test_function_restoring_nothing_fails(use_object_store: bool) -> None:
    """A function that ignores its checkpoint fails on the results it reports."""
    with pytest.raises(AssertionError, match=r"forgetful_fn.*'value': \(12, 3\)"):
        validate_save_restore(forgetful_fn, use_object_store=use_object_store)


@pytest.mark.parametrize("num_gpus", [1, -1, "1"])
def test_gpus_the_cluster_lacks_fail_at_once(num_gpus: Any) -> None:
    """num_gpus beyond the cluster's GPUs (none here) or not a number >= 0 is a ValueError
    naming it, raised before any actor is created rather than a check that never ends."""
    with pytest.raises(ValueError, match=f"num_gpus={num_gpus!r}"):
        validate_save_restore(GoodDict, num_gpus=num_gpus)
