"""The background deleter refuses to delete a checkpoint a live record refers to (a PBT
exploiter's record of its donor's checkpoint), on local disk and S3 alike."""

from __future__ import annotations

from tune_ckpt.storage.deleter import BackgroundDeleter

from .conftest import Backend, MakeDir


def test_a_referenced_checkpoint_is_kept_and_others_go(backend: Backend, make_dir: MakeDir) -> None:
    store = backend.store
    for iteration in (1, 2):
        store.commit_local_dir(
            f"t/checkpoint_{iteration:06d}", str(make_dir({"f": b"x"})), iteration
        )
    live = {"t/checkpoint_000001"}
    deleter = BackgroundDeleter(store, referenced=lambda path: path in live)
    deleter.delete("t/checkpoint_000001")
    deleter.delete("t/checkpoint_000002")
    deleter.close()
    assert store.list_committed("t") == ["t/checkpoint_000001"]
    store.verify("t/checkpoint_000001")
