"""PopulationBasedTraining on real Ray: exploits restore exactly the donor's checkpoint
(copy-free, in place where the actor is reused), retention never deletes a checkpoint an
exploiter refers to, function trainables are asked for checkpoints through their callable,
synchronous PBT ends cleanly, and a bad donor checkpoint skips the exploit.

The trainables' state is a number that only grows by the config's ``rate`` each step, and
each checkpoint says whose it is: a restore of the wrong checkpoint is visible in the
results."""

from __future__ import annotations

import glob
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import tune_ckpt as tune
from tune_ckpt import journal
from tune_ckpt.cli.gather_checks import verify as cli_verify
from tune_ckpt.schedulers import PopulationBasedTraining
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

pytestmark = pytest.mark.usefixtures("module_local_ray")


class Grower(tune.Trainable):
    """value += rate each step; a checkpoint holds the value, its trial and iteration."""

    def setup(self, config: dict[str, Any]) -> None:
        self.value = 0
        self.loaded: dict[str, Any] = {}

    def step(self) -> dict[str, Any]:
        _barrier(self.config, self.trial_id, self.iteration + 1)
        corrupt = self.config.get("corrupt_at")
        if corrupt is not None and self.iteration + 1 == corrupt:
            _truncate_other_checkpoints(self.trial_dir, self.trial_id)
        self.value += self.config["rate"]
        return {"value": self.value, "loaded": self.loaded, "rate": self.config["rate"]}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"value": self.value, "owner": self.trial_id, "iteration": self.iteration}

    def load_checkpoint(self, checkpoint: Any) -> None:
        self.value = checkpoint["value"]
        self.loaded = dict(checkpoint)


def _barrier(config: dict[str, Any], trial_id: str, iteration: int) -> None:
    """With ``config["barrier"]`` (a folder): step ``iteration`` waits until every other
    trial of the ``population`` reached ``iteration - 1``, so trials that all hold an actor
    stay in step (microsecond steps would otherwise let one finish before another starts)."""
    folder = config.get("barrier")
    if not folder:
        return
    with open(os.path.join(folder, trial_id), "w") as f:
        f.write(str(iteration - 1))
    deadline = time.monotonic() + 60
    while True:
        reached = {}
        for name in os.listdir(folder):
            with open(os.path.join(folder, name)) as f:
                text = f.read()
            reached[name] = int(text) if text else 0
        others = [v for k, v in reached.items() if k != trial_id]
        if len(reached) >= config["population"] and min(others) >= iteration - 1:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier: {reached} at iteration {iteration}")
        time.sleep(0.005)


def _truncate_other_checkpoints(trial_dir: str, trial_id: str) -> None:
    """Damage, for real, every committed checkpoint of the other trials."""
    experiment = os.path.dirname(trial_dir.rstrip("/"))
    for folder in glob.glob(os.path.join(experiment, "*", "checkpoint_*")):
        if trial_id in folder:
            continue
        for name in os.listdir(folder):
            if not name.startswith("."):
                with open(os.path.join(folder, name), "r+b") as f:
                    f.truncate(1)


def grow_fn(config: dict[str, Any]) -> None:
    """Function API: never checkpoints on its own; passes a checkpoint callable."""
    start = tune.get_checkpoint()
    state = start.to_dict() if start is not None else {"value": 0, "iteration": 0}
    value = state["value"]
    loaded = dict(state) if start is not None else {}
    for iteration in range(state["iteration"] + 1, 1000):
        _barrier(config, tune.get_context().get_trial_id(), iteration)
        value += config["rate"]

        def snapshot(value: int = value, iteration: int = iteration) -> tune.Checkpoint:
            owner = tune.get_context().get_trial_id()
            return tune.Checkpoint.from_dict(
                {"value": value, "owner": owner, "iteration": iteration}
            )

        tune.report({"value": value, "loaded": loaded, "rate": config["rate"]}, checkpoint=snapshot)


def _pbt(**kw: Any) -> PopulationBasedTraining:
    args: dict[str, Any] = dict(
        time_attr="training_iteration",
        metric="value",
        mode="max",
        perturbation_interval=3,
        hyperparam_mutations={"rate": [1, 2, 5, 100]},
        quantile_fraction=0.5,
        resample_probability=0.0,
        seed=7,
    )
    args.update(kw)
    return PopulationBasedTraining(**args)


def _fit(
    tmp_path: Path,
    trainable: Any,
    space: dict[str, Any],
    pbt: PopulationBasedTraining,
    iterations: int,
    **run_kw: Any,
) -> Any:
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(scheduler=pbt),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path),
            name="exp",
            verbose=0,
            stop={"training_iteration": iterations},
            **run_kw,
        ),
    ).fit()


def _results(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    _, trials = journal.load(experiment)
    out = {}
    for trial in trials.values():
        text = (tmp_path / "exp" / trial.trial_dir / "result.json").read_text()
        out[trial.trial_id] = [json.loads(line) for line in text.splitlines()]
    return out


def _exploits(tmp_path: Path) -> list[list[Any]]:
    path = tmp_path / "exp" / "pbt_global.txt"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_every_restore(results: dict[str, list[dict[str, Any]]]) -> int:
    """Each result after a load continues from the loaded checkpoint, which is another
    trial's real state at that iteration; returns how many exploits were seen."""
    seen = 0
    for trial_id, history in results.items():
        for before, after in itertools.pairwise(history):
            loaded = after["loaded"]
            if not loaded or loaded == before["loaded"]:
                continue
            seen += 1
            assert loaded["owner"] != trial_id, "restored its own checkpoint, not a donor's"
            assert after["training_iteration"] == loaded["iteration"] + 1
            assert after["value"] == loaded["value"] + after["rate"]
            donor = {r["training_iteration"]: r["value"] for r in results[loaded["owner"]]}
            assert loaded["iteration"] in donor
    return seen


def _verify_storage(tmp_path: Path) -> None:
    """Every kept record of every trial is on storage and verifies."""
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    store = CheckpointStore(experiment)
    _, trials = journal.load(experiment)
    for trial in trials.values():
        assert trial.checkpoints, trial.trial_id
        for record in trial.checkpoints:
            store.verify(record.path, record.manifest_digest)
    doc = cli_verify(str(tmp_path / "exp"))
    assert doc["bad"] == 0 and doc["unreadable"] == 0, doc


def test_an_exploit_restores_the_donors_checkpoint_in_place(tmp_path: Path) -> None:
    """Two trials on two CPUs: the worse one clones the better at each perturbation, in
    the same worker process; its next result continues the donor's number, its config is
    the explored one, its params files say so and its history is not truncated."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    space = {"rate": tune.grid_search([1, 100]), "barrier": str(barrier), "population": 2}
    results = _fit(tmp_path, Grower, space, _pbt(), iterations=9)
    assert all(r.error is None for r in results)
    history = _results(tmp_path)
    assert _check_every_restore(history) >= 1
    exploits = _exploits(tmp_path)
    assert exploits
    target = exploits[0][0]
    rows = history[target]
    assert [r["training_iteration"] for r in rows][:3] == [1, 2, 3]  # not truncated
    assert len({r["pid"] for r in rows}) == 1, "the exploit started a new process"
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    _, trials = journal.load(experiment)
    exploiter = trials[target]
    assert exploiter.exploit is None
    on_disk = json.loads((tmp_path / "exp" / exploiter.trial_dir / "params.json").read_text())
    assert on_disk == exploiter.config
    assert on_disk["rate"] == rows[-1]["rate"]
    assert (tmp_path / "exp" / f"pbt_policy_{target}.txt").exists()
    _verify_storage(tmp_path)
