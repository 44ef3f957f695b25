"""PopulationBasedTraining on real Ray: exploits restore exactly the donor's checkpoint
(copy-free, in place where the actor is reused), retention never deletes a checkpoint an
exploiter refers to, function trainables are asked for checkpoints through their callable,
synchronous PBT ends cleanly, and a bad donor checkpoint skips the exploit.

The trainables' state is a number that only grows by the config's ``rate`` each step, and
each checkpoint says whose it is: a restore of the wrong checkpoint is visible in the
results."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fault._pbt_driver import pbt
from fault._pbt_trainables import Grower, grow_fn

import tune_ckpt as tune
from tune_ckpt import journal
from tune_ckpt.cli.gather_checks import verify as cli_verify
from tune_ckpt.schedulers import PopulationBasedTraining
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

pytestmark = pytest.mark.usefixtures("module_local_ray")


def _pbt(**kw: Any) -> PopulationBasedTraining:
    return pbt(seed=7, **kw)


def _fit(
    tmp_path: Path,
    trainable: Any,
    space: dict[str, Any],
    pbt: PopulationBasedTraining,
    iterations: int,
    max_concurrent_trials: int | None = None,
    **run_kw: Any,
) -> Any:
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(scheduler=pbt, max_concurrent_trials=max_concurrent_trials),
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


def _check_every_restore(
    results: dict[str, list[dict[str, Any]]], exploits: list[list[Any]]
) -> None:
    """Each result after a restore (an exploit's, or a pause's own) continues from the
    loaded checkpoint, which is a real state of the trial it names at that iteration; the
    trials' loads of other trials' checkpoints are exactly the exploits PBT logged."""
    foreign = []
    for trial_id, history in results.items():
        for before, after in itertools.pairwise(history):
            loaded = after["loaded"]
            if not loaded or loaded == before["loaded"]:
                continue
            assert after["training_iteration"] == loaded["iteration"] + 1
            assert after["value"] == loaded["value"] + after["rate"]
            owner = {r["training_iteration"]: r["value"] for r in results[loaded["owner"]]}
            assert loaded["iteration"] in owner
            if loaded["owner"] != trial_id:
                foreign.append((trial_id, loaded["owner"]))
    assert sorted(foreign) == sorted((line[0], line[1]) for line in exploits)
    assert exploits, "no exploit happened"


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
    exploits = _exploits(tmp_path)
    _check_every_restore(history, exploits)
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


def test_the_object_store_path_sends_the_donors_checkpoint_packed(tmp_path: Path) -> None:
    """Workers that do not write the storage: the driver reads the donor's checkpoint,
    verifies it and sends it packed; the exploiter still continues the donor's number."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    space = {"rate": tune.grid_search([1, 100]), "barrier": str(barrier), "population": 2}
    results = _fit(
        tmp_path, Grower, space, _pbt(), iterations=9, checkpoint_transfer="object_store"
    )
    assert all(r.error is None for r in results)
    _check_every_restore(_results(tmp_path), _exploits(tmp_path))
    _verify_storage(tmp_path)


def test_num_to_keep_1_never_loses_a_checkpoint_an_exploiter_needs(tmp_path: Path) -> None:
    """Ray Tune #8441/#9036: a checkpoint every iteration and only one kept, a perturbation
    every 2 iterations: each donor's retention drops the checkpoint its exploiter is about
    to load, yet every exploit restores it (none is missing), and storage verifies."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    space = {"rate": tune.grid_search([1, 100]), "barrier": str(barrier), "population": 2}
    results = _fit(
        tmp_path,
        Grower,
        space,
        _pbt(perturbation_interval=2),
        # 11 perturbation points: how many end in an exploit depends on which trial leads
        # at each (16 iterations gave 3 to 5).
        iterations=24,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_frequency=1),
    )
    assert all(r.error is None for r in results)
    assert all(r.metrics["training_iteration"] == 24 for r in results)
    exploits = _exploits(tmp_path)
    assert len(exploits) >= 4
    _check_every_restore(_results(tmp_path), exploits)
    _verify_storage(tmp_path)


def test_function_trainables_are_asked_for_a_checkpoint_through_their_callable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ray Tune #27170: functions that never checkpoint on their own (no frequency) but
    pass a checkpoint callable: the donors are asked for checkpoints, and no exploit is
    skipped for want of one."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    space = {"rate": tune.grid_search([1, 100]), "barrier": str(barrier), "population": 2}
    with caplog.at_level(logging.WARNING):
        results = _fit(tmp_path, grow_fn, space, _pbt(), iterations=9)
    assert all(r.error is None for r in results)
    _check_every_restore(_results(tmp_path), _exploits(tmp_path))
    assert "skipping the exploit" not in caplog.text


def test_synchronous_pbt_with_pauses_racing_saves_ends_every_trial(tmp_path: Path) -> None:
    """Ray Tune #28511/#57906: synch PBT, four trials on two CPUs; trials pause at each
    perturbation point while top trials' checkpoints are still being saved. The sweep
    ends (no hang), every trial TERMINATED at the last iteration, none in ERROR."""
    space = {"rate": tune.grid_search([1, 2, 5, 100])}
    pbt = _pbt(synch=True, quantile_fraction=0.25)
    results = _fit(tmp_path, Grower, space, pbt, iterations=7)
    assert all(r.error is None for r in results)
    assert all(r.metrics["training_iteration"] == 7 for r in results)
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    _, trials = journal.load(experiment)
    assert {t.status.value for t in trials.values()} == {"TERMINATED"}
    _check_every_restore(_results(tmp_path), _exploits(tmp_path))
    _verify_storage(tmp_path)


def test_a_bad_donor_checkpoint_skips_the_exploit_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One trial at a time: the first (rate 100) pauses at iteration 3 with a checkpoint;
    the second truncates that checkpoint's file at its own step 3, then, in the bottom
    quantile, is to clone it. The exploit is skipped with a warning, and the trial goes on
    with its own number and config."""
    space = {"rate": tune.grid_search([100, 1]), "corrupt_at": 3, "corrupt_rate": 1}
    with caplog.at_level(logging.WARNING):
        results = _fit(
            tmp_path,
            Grower,
            space,
            _pbt(hyperparam_mutations={"rate": [1, 100]}),
            iterations=6,
            max_concurrent_trials=1,
        )
    assert "skipping the exploit" in caplog.text
    history = _results(tmp_path)
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    _, trials = journal.load(experiment)
    (victim,) = [t for t in trials.values() if t.experiment_tag.startswith("1_")]
    rows = history[victim.trial_id]
    assert victim.config["rate"] == 1
    assert [r["value"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(not r["loaded"] or r["loaded"]["owner"] == victim.trial_id for r in rows)
    assert all(r.error is None for r in results)
