"""The owner fence: a worker whose trial was started again elsewhere commits nothing, on local
disk and on S3, and the checkpoint its successor committed stays as the driver recorded it."""

from __future__ import annotations

import pytest

from tune_ckpt.errors import SupersededError
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.owner import OWNER_NAME, claim, current_owner, require_owner

from .conftest import Backend, MakeDir

TRIAL = "trial_0"
CKPT = f"{TRIAL}/checkpoint_000010"


def test_a_trials_first_actor_owns_it_until_a_claim(backend: Backend) -> None:
    assert current_owner(backend.location, TRIAL) == ""
    require_owner(backend.location, TRIAL, "")
    first = claim(backend.location, TRIAL)
    assert backend.get(f"{TRIAL}/{OWNER_NAME}") == first.encode()
    require_owner(backend.location, TRIAL, first)
    with pytest.raises(SupersededError, match="started again in another actor"):
        require_owner(backend.location, TRIAL, "")
    second = claim(backend.location, TRIAL)
    assert second != first
    with pytest.raises(SupersededError):
        require_owner(backend.location, TRIAL, first)
    require_owner(backend.location, TRIAL, second)


def test_a_fenced_off_commit_leaves_the_successors_checkpoint_as_it_was(
    backend: Backend, make_dir: MakeDir
) -> None:
    """The old actor (empty token) commits the same iteration after the new one did: refused
    before it replaces anything (on S3 a commit would first delete the folder it replaces),
    so the successor's checkpoint still verifies against the digest the driver recorded."""
    token = claim(backend.location, TRIAL)
    successor = CheckpointStore(
        backend.location, guard=lambda: require_owner(backend.location, TRIAL, token)
    )
    recorded = successor.commit_local_dir(CKPT, str(make_dir({"state": b"successor"})), 10)
    old = CheckpointStore(
        backend.location, guard=lambda: require_owner(backend.location, TRIAL, "")
    )
    with pytest.raises(SupersededError):
        old.commit_local_dir(CKPT, str(make_dir({"state": b"old actor"})), 10)
    with pytest.raises(SupersededError):
        old.commit_local_dir(f"{TRIAL}/checkpoint_000020", str(make_dir({"state": b"x"})), 20)
    assert backend.store.list_committed(TRIAL) == [CKPT]
    assert backend.store.verify(CKPT, recorded.manifest_digest).manifest == recorded.manifest
    assert backend.get(f"{CKPT}/state") == b"successor"
    assert not [f for f in backend.files(TRIAL) if "checkpoint_000020" in f]
