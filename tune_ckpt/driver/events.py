"""``TrialEvents``: what the driver loop tells at each event of a sweep, fanned out to the
``RunConfig(callbacks=...)`` in order (the order of hooks is documented on
:class:`tune_ckpt.callback.Callback`).

A callback that raises is logged, naming its class and hook, and the sweep goes on. Each
trial gets its ``local_path`` (the trial folder on local storage; on object storage a folder
on the driver's disk, ``$TMPDIR/tune_ckpt_driver/<experiment>-<hash>/<trial folder>``, whose
files are uploaded into the trial folder when the trial ends and when the sweep ends).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import tempfile
from typing import Any

from tune_ckpt.callback import Callback
from tune_ckpt.checkpoint import Checkpoint
from tune_ckpt.config import RunConfig, TuneConfig
from tune_ckpt.errors import StorageError
from tune_ckpt.result import SHOULD_CHECKPOINT
from tune_ckpt.result_files import PARAMS_FILE, PARAMS_PICKLE, PROGRESS_FILE, RESULT_FILE
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus

logger = logging.getLogger(__name__)

DRIVER_SCRATCH_DIR = "tune_ckpt_driver"
"""Under the system's temporary folder: the driver's trial folders for object storage."""

_OWN_FILES = frozenset({PARAMS_FILE, PARAMS_PICKLE, RESULT_FILE, PROGRESS_FILE})
"""Names in a trial folder that tune_ckpt writes: never overwritten by an upload."""


class TrialEvents:
    """The sweep's events, told to its callbacks (one object per ``TrialRunner``)."""

    def __init__(
        self,
        run_config: RunConfig,
        tune_config: TuneConfig,
        trials: list[Trial],
        experiment: StorageLocation,
    ) -> None:
        self._callbacks: tuple[Callback, ...] = tuple(run_config.callbacks or ())
        self._stop = run_config.stop
        self._num_samples = tune_config.num_samples
        self._trials = trials  # the runner's own list: trials added later are seen too
        self._experiment = experiment
        self._iteration = 0
        self._failures: dict[tuple[int, str], int] = {}
        self._uploaded: dict[str, tuple[int, int]] = {}  # scratch file -> (size, mtime_ns)

    # -- the sweep -------------------------------------------------------------------------

    def experiment_start(self) -> None:
        if self._callbacks:
            self._call(
                "setup",
                stop=self._stop,
                num_samples=self._num_samples,
                total_num_samples=len(self._trials),
            )

    def experiment_end(self) -> None:
        if not self._callbacks:
            return
        self._call("on_experiment_end", trials=self._trials)
        for trial in self._trials:
            self._upload(trial)
        for (callback_id, hook), count in self._failures.items():
            if count > 1:
                name = next(type(c).__name__ for c in self._callbacks if id(c) == callback_id)
                logger.warning("callback %s.%s raised %d times in this sweep", name, hook, count)

    def step_begin(self) -> None:
        if self._callbacks:
            self._call("on_step_begin", iteration=self._iteration, trials=self._trials)

    def step_end(self) -> None:
        self._iteration += 1
        if self._callbacks:
            self._call("on_step_end", iteration=self._iteration, trials=self._trials)

    # -- one trial -------------------------------------------------------------------------

    def trial_started(self, trial: Trial) -> None:
        self._trial_hook("on_trial_start", trial)

    def trial_restored(self, trial: Trial, restored: bool) -> None:
        """``restored``: it loaded a checkpoint (False: none verified, it starts over)."""
        if restored:
            self._trial_hook("on_trial_restore", trial)

    def trial_result(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Tell the callbacks; True when one of them set ``result["should_checkpoint"]``
        (as Ray Tune, a callback may ask for a checkpoint of this result)."""
        if not self._callbacks:
            return False
        seen = dict(result)
        self._trial_hook("on_trial_result", trial, result=seen)
        return bool(seen.get(SHOULD_CHECKPOINT)) and not result.get(SHOULD_CHECKPOINT)

    def checkpoint_committed(self, trial: Trial, relative_path: str) -> None:
        """A checkpoint of ``trial`` at ``relative_path`` (under the experiment) is on
        storage, recorded and journaled."""
        if not self._callbacks:
            return
        checkpoint = Checkpoint.at(self._experiment.child(relative_path))
        self._trial_hook("on_checkpoint", trial, checkpoint=checkpoint)
        self._trial_hook("on_trial_save", trial)

    def trial_recovering(self, trial: Trial) -> None:
        """``trial`` failed or lost its actor, and waits to run again."""
        self._trial_hook("on_trial_recover", trial)

    def trial_ended(self, trial: Trial) -> None:
        """``trial`` reached TERMINATED (``on_trial_complete``) or ERROR
        (``on_trial_error``); its logged files are uploaded after the hooks ran."""
        if not self._callbacks:
            return
        if trial.status == TrialStatus.TERMINATED:
            self._trial_hook("on_trial_complete", trial)
        elif trial.status == TrialStatus.ERROR:
            self._trial_hook("on_trial_error", trial)
        self._upload(trial)

    # -- dispatch --------------------------------------------------------------------------

    def _trial_hook(self, hook: str, trial: Trial, **extra: Any) -> None:
        if not self._callbacks:
            return
        self._give_paths(trial)
        self._call(hook, iteration=self._iteration, trials=self._trials, trial=trial, **extra)

    def _call(self, hook: str, **kwargs: Any) -> None:
        for callback in self._callbacks:
            try:
                getattr(callback, hook)(**kwargs)
            except Exception:
                self._report(callback, hook)

    def _report(self, callback: Callback, hook: str) -> None:
        """The first failure of a hook with its traceback; later ones counted (summed up at
        the end), so a hook failing on every result does not flood the log."""
        key = (id(callback), hook)
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        name = type(callback).__name__
        if count == 1:
            logger.exception("callback %s.%s raised; the sweep goes on", name, hook)
        else:
            logger.debug("callback %s.%s raised again", name, hook, exc_info=True)

    # -- the trials' local folders ---------------------------------------------------------

    def _give_paths(self, trial: Trial) -> None:
        if trial.local_path is not None:
            return
        local = self._experiment.local_os_path(trial.trial_dir)
        if local is None:
            local = os.path.join(self._scratch_root(), *trial.trial_dir.split("/"))
        os.makedirs(local, exist_ok=True)
        trial.set_paths(local, self._experiment.uri(trial.trial_dir))

    def _scratch_root(self) -> str:
        uri = self._experiment.uri()
        name = posixpath.basename(uri.rstrip("/")) or "experiment"
        digest = hashlib.sha256(uri.encode()).hexdigest()[:8]
        return os.path.join(tempfile.gettempdir(), DRIVER_SCRATCH_DIR, f"{name}-{digest}")

    def _upload(self, trial: Trial) -> None:
        """On object storage: the files callbacks wrote in the trial's local folder, new or
        changed since the last upload, copied into its trial folder. A failure is logged:
        these files are a convenience, not the sweep's state."""
        local = trial.local_path
        if local is None or self._experiment.is_local or not os.path.isdir(local):
            return
        for folder, dirs, files in os.walk(local):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                relative = os.path.relpath(full, local).replace(os.sep, "/")
                top = relative.split("/", 1)[0]
                if top in _OWN_FILES or top.startswith((".", "checkpoint_")):
                    continue
                stat = os.stat(full)
                if self._uploaded.get(full) == (stat.st_size, stat.st_mtime_ns):
                    continue
                target = paths.join(trial.trial_dir, relative)
                try:
                    with open(full, "rb") as source:
                        self._experiment.write_bytes(target, source.read())
                except (OSError, StorageError) as exc:
                    logger.error("could not upload %s to %s: %s", full, target, exc)
                    continue
                self._uploaded[full] = (stat.st_size, stat.st_mtime_ns)
