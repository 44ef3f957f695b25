"""``BackgroundDeleter``: checkpoint deletions off the driver loop's thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from tune_ckpt.errors import StorageError
from tune_ckpt.storage.commit import CheckpointStore

logger = logging.getLogger(__name__)


class BackgroundDeleter:
    """Deletes checkpoints in a helper thread, in the order asked, so a driver loop does not
    wait on storage for what retention drops. A failed deletion leaves an extra checkpoint,
    never a missing one; it is logged with its path and cause, and the next listing or
    retention pass sees the checkpoint again.

    ``referenced(path)``, asked in the caller's thread when a deletion is queued, vetoes
    deleting a checkpoint some live record still refers to (a PBT exploiter's record of a
    donor's checkpoint)."""

    def __init__(
        self, store: CheckpointStore, referenced: Callable[[str], bool] | None = None
    ) -> None:
        self._store = store
        self._referenced = referenced
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []

    def delete(self, relative: str) -> None:
        """Queue the deletion of the checkpoint ``relative``, unless it is referenced."""
        if self._referenced is not None and self._referenced(relative):
            logger.debug("keeping checkpoint %s: a live record refers to it", relative)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tune_ckpt-delete")
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._pool.submit(self._delete, relative))

    def _delete(self, relative: str) -> None:
        try:
            self._store.delete(relative)
        except StorageError as exc:
            logger.warning("could not delete checkpoint %s: %s", exc.path, exc.cause)

    def wait(self) -> None:
        """Block until every deletion asked for so far is done."""
        for future in self._futures:
            future.result()
        self._futures = []

    def close(self) -> None:
        """Wait for the queued deletions, then stop the helper thread."""
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
