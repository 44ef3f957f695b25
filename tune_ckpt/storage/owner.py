"""Which actor may commit a trial's checkpoints: a fence against a worker the driver gave up on.

The driver gives up on a worker it cannot reach (its node was found lost, or drained and
removed) and starts the trial again elsewhere; the old worker may still run for a while and
reach the storage. Left alone, it could commit over the checkpoints of its successor, which
continues from the same iteration and writes the same ``checkpoint_NNNNNN`` names (on object
stores a commit even deletes the folder it replaces first): committed work the driver
recorded would be lost.

So a trial started again gets a new token, written by the driver to ``.tune_ckpt_owner`` in
the trial folder before the new actor exists, and each worker checks the file against the
token it was started with right before it publishes a checkpoint (:func:`require_owner`).
A trial's first actor has the empty token: no file yet. A worker fenced off raises
:class:`~tune_ckpt.errors.SupersededError` and commits nothing. The check is one small read
per commit; the window between it and the publish is that of a rename on local storage and
of the manifest write on object stores, which also check before their first file.
"""

from __future__ import annotations

import uuid

from tune_ckpt.errors import StorageNotFoundError, SupersededError
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation

OWNER_NAME = ".tune_ckpt_owner"
"""The file in a trial folder that names the token of the actor that may commit there."""


def claim(experiment: StorageLocation, trial_dir: str) -> str:
    """Fence off every earlier actor of the trial in ``trial_dir``: a new token, written to
    the owner file, for the actor about to start."""
    token = uuid.uuid4().hex
    experiment.write_bytes(paths.join(trial_dir, OWNER_NAME), token.encode())
    return token


def current_owner(experiment: StorageLocation, trial_dir: str) -> str:
    """The token in the trial's owner file; empty when there is none (its first actor)."""
    try:
        return experiment.read_bytes(paths.join(trial_dir, OWNER_NAME)).decode()
    except StorageNotFoundError:
        return ""


def require_owner(experiment: StorageLocation, trial_dir: str, token: str) -> None:
    """Raise SupersededError unless ``token`` is the trial's current owner."""
    owner = current_owner(experiment, trial_dir)
    if owner != token:
        raise SupersededError(
            f"not committing: the trial in {experiment.uri(trial_dir)} was started again in "
            f"another actor (owner token {owner[:8] or 'none'}, this worker's "
            f"{token[:8] or 'none'}); the driver no longer hears this worker"
        )
