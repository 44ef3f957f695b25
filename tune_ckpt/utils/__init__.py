"""``ray.tune.utils``: ``validate_save_restore`` (here), ``mock_trainable.MyTrainableClass``.

``validate_save_restore`` is imported on first use: a worker process that only loads
``tune_ckpt.utils.mock_trainable`` does not import the driver-side validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tune_ckpt.utils.validation import SaveRestoreError, validate_save_restore

__all__ = ["SaveRestoreError", "validate_save_restore"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tune_ckpt.utils import validation

        return getattr(validation, name)
    raise AttributeError(f"module 'tune_ckpt.utils' has no attribute {name!r}")
