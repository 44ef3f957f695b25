"""PB2 on real Ray: four trials on two CPUs, the GP bandit choosing the exploiters' ``rate``
within its bounds. Every exploit restores exactly the donor's checkpoint (the trainables'
state is a number that grows by ``rate`` each step, and each checkpoint names its owner),
the bandit's choices stay in bounds and move away from the donors' values once it has
reward changes to learn from, every trial ends at the last iteration, and storage verifies.
Ray's PB2 inherits PBT's logs: ``pbt_global.txt`` and ``pbt_policy_<trial_id>.txt``."""

from __future__ import annotations

import json
from pathlib import Path

from fault._pbt_trainables import Grower

import tune_ckpt as tune
from tune_ckpt import journal
from tune_ckpt.schedulers import PB2
from tune_ckpt.storage.location import StorageLocation

from .test_pbt_run import _check_every_restore, _exploits, _results, _verify_storage

LOW, HIGH = 1.0, 10.0
ITERATIONS = 8


def test_pb2_exploits_choose_bounded_values_and_restore_the_donors_checkpoint(
    tmp_path: Path,
) -> None:
    pb2 = PB2(
        time_attr="training_iteration",
        metric="value",
        mode="max",
        perturbation_interval=2,
        hyperparam_bounds={"rate": [LOW, HIGH]},
        quantile_fraction=0.25,
        synch=True,  # four trials on two CPUs reach each perturbation point together
        seed=3,
    )
    results = tune.Tuner(
        Grower,
        param_space={"rate": tune.grid_search([1.0, 1.5, 2.0, 8.0])},
        tune_config=tune.TuneConfig(scheduler=pb2),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path),
            name="exp",
            verbose=0,
            stop={"training_iteration": ITERATIONS},
        ),
    ).fit()

    assert len(results) == 4 and all(r.error is None for r in results)
    assert all(r.metrics["training_iteration"] == ITERATIONS for r in results)
    experiment = StorageLocation.resolve(str(tmp_path / "exp"))
    _, trials = journal.load(experiment)
    assert {t.status.value for t in trials.values()} == {"TERMINATED"}

    exploits = _exploits(tmp_path)
    _check_every_restore(_results(tmp_path), exploits)  # asserts at least one exploit
    for trial_id, donor_id, _, _, _, new_config in exploits:
        assert trial_id != donor_id
        assert LOW <= new_config["rate"] <= HIGH, new_config
        assert (tmp_path / "exp" / f"pbt_policy_{trial_id}.txt").is_file()
    # The first point has no reward change yet (the donor's value is kept); later ones
    # are the bandit's picks, which land on the donor's exact float only by accident.
    assert any(new["rate"] != old["rate"] for *_, old, new in exploits), exploits
    for trial in trials.values():  # the config each trial ended with is in bounds
        assert LOW <= trial.config["rate"] <= HIGH

    state = json.loads((tmp_path / "exp" / "scheduler_state.json").read_text())
    assert state["scheduler"] == "PB2" and state["pb2"]["observations"], state
    _verify_storage(tmp_path)
