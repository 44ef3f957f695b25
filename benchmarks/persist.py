"""Checkpoint persist throughput against a plain file copy of the same bytes, same disk.

Both ways tune_ckpt persists a directory checkpoint on local storage are measured:
``staged`` (a class trainable writes into the staged folder; tune_ckpt hashes, writes the
manifest, syncs and renames) and ``copied`` (a folder elsewhere is copied in with hashing,
as for a function trainable's directory checkpoint).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation

MiB = 1024 * 1024


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def measure(mib: int = 256, rounds: int = 3) -> dict[str, Any]:
    """Best of ``rounds`` for each way; throughputs in MiB/s and ratios to the copy."""
    root = tempfile.mkdtemp(prefix="bench_persist_")
    data = os.urandom(mib * MiB)
    store = CheckpointStore(StorageLocation.resolve(os.path.join(root, "storage")))
    source = os.path.join(root, "source")
    os.makedirs(source)
    _write(os.path.join(source, "blob.bin"), data)
    best = {"copy": float("inf"), "staged": float("inf"), "copied": float("inf")}
    try:
        for r in range(rounds):
            target = os.path.join(root, f"copy{r}")
            os.makedirs(target)
            start = time.perf_counter()
            shutil.copyfile(os.path.join(source, "blob.bin"), os.path.join(target, "blob.bin"))
            best["copy"] = min(best["copy"], time.perf_counter() - start)

            staged = store.stage_local(f"trial/checkpoint_{r:06d}")
            _write(os.path.join(staged, "blob.bin"), data)  # the trainable's own write
            start = time.perf_counter()
            store.commit_staged(f"trial/checkpoint_{r:06d}", staged, r)
            best["staged"] = min(best["staged"], time.perf_counter() - start)

            start = time.perf_counter()
            store.commit_local_dir(f"trial/checkpoint_{100 + r:06d}", source, 100 + r)
            best["copied"] = min(best["copied"], time.perf_counter() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate = {k: mib / v for k, v in best.items()}
    return {
        "mib": mib,
        "copy_mib_s": rate["copy"],
        "staged_mib_s": rate["staged"],
        "copied_mib_s": rate["copied"],
        "staged_ratio": rate["staged"] / rate["copy"],
        "copied_ratio": rate["copied"] / rate["copy"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure()))
