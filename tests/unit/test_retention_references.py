"""Reference-aware retention: a checkpoint is deleted only when no live record of any trial
(kept records, pending PBT exploits) refers to it, so an exploiter's donor checkpoint can
never vanish under it (Ray Tune #8441/#9036). Pure: records, trials and plans, no storage."""

from __future__ import annotations

from tune_ckpt.config import CheckpointConfig
from tune_ckpt.records import CheckpointRecord, ExploitReference
from tune_ckpt.references import live_references, under
from tune_ckpt.retention import plan_retention, unreferenced
from tune_ckpt.trial import Trial, TrialStatus


def rec(trial: str, iteration: int) -> CheckpointRecord:
    return CheckpointRecord(
        f"{trial}/checkpoint_{iteration:06d}", iteration, {}, f"d{iteration}", float(iteration)
    )


def trial(trial_id: str, *records: CheckpointRecord) -> Trial:
    t = Trial(trial_id, {"lr": 0.1}, trial_id)
    t.checkpoints = list(records)
    return t


KEEP_ONE = CheckpointConfig(num_to_keep=1)


def test_a_donor_checkpoint_an_exploiter_keeps_survives_the_donors_retention() -> None:
    """The donor commits a newer checkpoint and its retention drops the old one; the
    exploiter's kept record points at it, so it is not deleted."""
    shared = rec("donor", 4)
    donor = trial("donor", shared, rec("donor", 5))
    exploiter = trial("exploiter", shared)
    plan = plan_retention(donor.checkpoints, KEEP_ONE)
    assert [r.path for r in plan.delete] == [shared.path]
    donor.checkpoints = list(plan.keep)
    assert unreferenced(plan.delete, live_references([donor, exploiter])) == []


def test_it_goes_when_the_last_record_pointing_at_it_is_dropped() -> None:
    """Later the exploiter commits its own checkpoint and drops the donor's: no trial
    refers to it any more, so now it is deleted."""
    shared = rec("donor", 4)
    donor = trial("donor", rec("donor", 5))
    exploiter = trial("exploiter", shared, rec("exploiter", 6))
    plan = plan_retention(exploiter.checkpoints, KEEP_ONE)
    exploiter.checkpoints = list(plan.keep)
    deletable = unreferenced(plan.delete, live_references([donor, exploiter]))
    assert [r.path for r in deletable] == [shared.path]


def test_a_pending_exploit_keeps_its_checkpoint_alive_until_the_trial_finishes() -> None:
    """Journaled before the exploiter restarts: the reference alone keeps the checkpoint;
    a finished trial's pending exploit will never run and keeps nothing."""
    shared = rec("donor", 4)
    donor = trial("donor", rec("donor", 5))
    exploiter = trial("exploiter", rec("exploiter", 3))
    exploiter.exploit = ExploitReference("donor", shared, {"lr": 0.2})
    assert unreferenced([shared], live_references([donor, exploiter])) == []
    exploiter.set_status(TrialStatus.TERMINATED)
    assert unreferenced([shared], live_references([donor, exploiter])) == [shared]


def test_several_exploiters_and_duplicates() -> None:
    """Two exploiters of one checkpoint: it stays while either keeps it; a path dropped
    twice in one batch is deleted once."""
    shared = rec("donor", 4)
    a = trial("a", shared)
    b = trial("b", shared)
    assert unreferenced([shared], live_references([a, b])) == []
    a.checkpoints = []
    assert unreferenced([shared], live_references([a, b])) == []
    b.checkpoints = []
    assert unreferenced([shared, shared], live_references([a, b])) == [shared]


def test_the_exploit_reference_round_trips_through_the_trials_json() -> None:
    t = trial("exploiter", rec("exploiter", 3))
    t.exploit = ExploitReference("donor", rec("donor", 4), {"lr": 0.2, "layers": [1, 2]})
    again = Trial.from_json(t.to_json())
    assert again.exploit == t.exploit
    assert again.exploit is not None and again.exploit.checkpoint.manifest_digest == "d4"
    plain = trial("other")
    assert Trial.from_json(plain.to_json()).exploit is None
    legacy = plain.to_json()
    del legacy["exploit"]  # journals written before exploits existed
    assert Trial.from_json(legacy).exploit is None


def test_under_tells_a_trials_own_checkpoints_from_others() -> None:
    assert under("exp_a", "exp_a/checkpoint_000004")
    assert under("exp_a/", "exp_a/checkpoint_000004")
    assert not under("exp_a", "exp_ab/checkpoint_000004")
    assert not under("exp_a", "exp_b/checkpoint_000004")


def test_an_awaited_exploit_takes_the_donors_first_checkpoint_at_its_point() -> None:
    """A driver died while an exploit waited for its donor's checkpoint: on restore it
    refers to the donor's first kept checkpoint at or after the decision's iteration, or
    to none when the donor committed none since; the awaited exploit round-trips."""
    from tune_ckpt.records import AwaitedExploit
    from tune_ckpt.references import resolve_awaited

    donor = trial("d", rec("d", 3), rec("d", 6), rec("d", 9))
    exploiter = trial("e", rec("e", 6))
    exploiter.awaiting = AwaitedExploit("d", 5, {"lr": 0.2})
    back = Trial.from_json(exploiter.to_json())
    assert back.awaiting == exploiter.awaiting
    ref = resolve_awaited(back, donor)
    assert ref == ExploitReference("d", rec("d", 6), {"lr": 0.2})
    exploiter.awaiting = AwaitedExploit("d", 10, {"lr": 0.2})
    assert resolve_awaited(exploiter, donor) is None
    assert resolve_awaited(exploiter, None) is None
