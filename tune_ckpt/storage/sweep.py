"""Sweeping what interrupted writes left under a trial folder.

Leftovers are temporary and trash folders (``storage/staging``) and checkpoint folders without
a manifest. A sealed temporary folder (its manifest written) whose rename into place was
interrupted is published rather than removed, so the checkpoint it replaced is not lost.
Sweep only a trial with no writer at work: a writer's temporary folder looks like a leftover.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pyarrow.fs as pafs

from tune_ckpt.storage import paths, staging
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.storage.manifest import MANIFEST_NAME


@dataclass(frozen=True)
class SweepReport:
    """What a sweep of one trial removed and published (or would, in a dry run).

    Attributes:
        removed: relative paths of the leftovers removed.
        published: ``(temporary folder, checkpoint)`` relative paths of each sealed temporary
            folder renamed into place.
        kept: checkpoint folders without a manifest left in place because the caller named
            them in ``keep`` (the journal records them as committed).
    """

    removed: tuple[str, ...]
    published: tuple[tuple[str, str], ...]
    kept: tuple[str, ...] = ()


def _publish_target(
    location: StorageLocation, trial_relative: str, name: str, taken: set[str]
) -> str | None:
    """The checkpoint a sealed temporary folder (manifest written) should become: its rename
    was interrupted while it replaced a checkpoint, so it is published rather than lost.
    None for anything else, or when ``taken`` (targets already planned) or a committed
    checkpoint already holds that name."""
    target = staging.published_name(name)
    if target is None or not location.is_local:
        return None
    target_relative = paths.join(trial_relative, target)
    if target_relative in taken:
        return None
    sealed = location.is_file(paths.join(trial_relative, name, MANIFEST_NAME))
    if not sealed or location.is_file(paths.join(target_relative, MANIFEST_NAME)):
        return None
    return target_relative


def sweep_report(
    location: StorageLocation,
    trial_relative: str,
    dry_run: bool = False,
    keep: Collection[str] = (),
) -> SweepReport:
    """Remove the leftovers under a trial and publish its sealed temporary folders,
    reporting both (with ``dry_run``, what would be done, without changing anything).
    Folders named in ``keep`` (relative paths) are not removed but reported as kept."""
    entries = location.list_dir(trial_relative)
    published: list[tuple[str, str]] = []
    taken: set[str] = set()
    # Publishing is decided first, so a manifest-less folder about to be replaced by a
    # publish is not also counted as removed, and a dry run reports what a real one does.
    for info in entries:
        name = paths.basename(info.path)
        target = _publish_target(location, trial_relative, name, taken)
        if target is not None:
            tmp_relative = paths.join(trial_relative, name)
            if not dry_run:
                staging.publish_local(location, tmp_relative, target)
            published.append((tmp_relative, target))
            taken.add(target)
    sources = {tmp for tmp, _ in published}
    removed = []
    kept = []
    for info in entries:
        name = paths.basename(info.path)
        relative = paths.join(trial_relative, name)
        if relative in sources or relative in taken:
            continue
        leftover = name.startswith((staging.TMP_PREFIX, staging.TRASH_PREFIX)) or (
            paths.parse_checkpoint_dirname(name) is not None
            and info.type == pafs.FileType.Directory
            and not location.is_file(paths.join(relative, MANIFEST_NAME))
        )
        if not leftover:
            continue
        if relative in keep:
            kept.append(relative)
            continue
        removed.append(relative)
        if dry_run:
            continue
        if info.type == pafs.FileType.Directory:
            location.delete_dir(relative)
        else:
            location.delete_file(relative)
    return SweepReport(tuple(removed), tuple(published), tuple(kept))
