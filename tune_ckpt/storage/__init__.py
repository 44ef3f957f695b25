"""Storage on pyarrow.fs: locations, the commit protocol, manifests and packing."""

from tune_ckpt.storage.commit import CheckpointStore
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME, Manifest
from tune_ckpt.storage.packing import PackedCheckpoint
from tune_ckpt.storage.reading import Committed

__all__ = [
    "MANIFEST_NAME",
    "CheckpointStore",
    "Committed",
    "Manifest",
    "PackedCheckpoint",
    "StorageLocation",
]
