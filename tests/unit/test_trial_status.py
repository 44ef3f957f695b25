"""The PAUSED status and its transitions."""

from __future__ import annotations

import pytest

from tune_ckpt.trial import IllegalTransition, Trial, TrialStatus


def _running() -> Trial:
    trial = Trial(trial_id="a", config={}, trial_dir="a")
    trial.set_status(TrialStatus.RUNNING)
    return trial


@pytest.mark.parametrize(
    "after", [TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.TERMINATED, TrialStatus.ERROR]
)
def test_a_paused_trial_resumes_waits_stops_or_fails(after: TrialStatus) -> None:
    trial = _running()
    trial.set_status(TrialStatus.PAUSED)
    trial.set_status(after)
    assert trial.status == after


def test_only_a_running_trial_pauses() -> None:
    trial = Trial(trial_id="a", config={}, trial_dir="a")
    with pytest.raises(IllegalTransition, match="PENDING -> PAUSED"):
        trial.set_status(TrialStatus.PAUSED)


def test_paused_survives_the_journal_and_is_unfinished() -> None:
    trial = _running()
    trial.set_status(TrialStatus.PAUSED)
    again = Trial.from_json(trial.to_json())
    assert again.status == TrialStatus.PAUSED
    assert not again.is_finished
