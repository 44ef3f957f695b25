"""Every checkpoint's manifest carries the results since the previous one, for both trainable
APIs on every transfer path, so Tuner.restore can rebuild a history the driver never wrote."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from s3server import BUCKET, MotoServer

import tune_ckpt as tune
from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

from .test_checkpoint_mechanisms import Counter


def _manifest_iterations(storage: str, trial_dir: str) -> dict[int, list[int]]:
    experiment = StorageLocation.resolve(storage).child("exp")
    store = CheckpointStore(experiment)
    found = {}
    for relative in store.list_committed(trial_dir):
        committed = store.read(relative)
        found[committed.iteration] = [r["training_iteration"] for r in committed.manifest.results]
    return found


@pytest.mark.parametrize("transfer", ["auto", "object_store"])
@pytest.mark.parametrize("where", ["local", "s3"])
def test_class_trainable_manifests_hold_results(
    tmp_path: Path, request: pytest.FixtureRequest, transfer: str, where: str
) -> None:
    """Checkpoints every 2 iterations of 5, one at the end: 1-2, 3-4 and 5."""
    if where == "s3":
        server: MotoServer = request.getfixturevalue("moto_server")
        # Credentials in the URI: Ray's workers started before the server set AWS_*.
        storage = server.uri(BUCKET, f"manifest-{uuid.uuid4().hex[:8]}")
        storage = storage.replace("s3://", "s3://testing:testing@")
    else:
        storage = str(tmp_path)
    (result,) = tune.Tuner(
        Counter,
        run_config=tune.RunConfig(
            storage_path=storage,
            name="exp",
            verbose=0,
            stop={"training_iteration": 5},
            checkpoint_transfer=transfer,  # type: ignore[arg-type]
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2, checkpoint_at_end=True),
        ),
    ).fit()
    assert result.error is None
    trial_dir = result.path.rstrip("/").rsplit("/", 1)[-1]
    assert _manifest_iterations(storage, trial_dir) == {2: [1, 2], 4: [3, 4], 5: [5]}
