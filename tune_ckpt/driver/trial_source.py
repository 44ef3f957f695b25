"""Trials created while the sweep runs, from a ``TuneConfig(search_alg=...)``, and the
searcher's state kept beside the journal so a restored sweep continues its suggestions.

Without a search algorithm every trial is created up front by ``Tuner`` (as before) and
:class:`TrialSource` produces nothing; its hooks do nothing.

``searcher_state.json`` (format 1, rewritten whole, atomically, when it changed)::

    {"format": 1,
     "trial_tag": "1a2b3",            # trial ids are "<trial_tag>_<index:05d>"
     "created": 7,                    # trials created so far: the next index
     "told_complete": ["1a2b3_00000", ...],   # trials whose end the searcher heard
     "last_trial": {...},             # Trial.to_json() of the newest trial
     "generator": {...}}              # SearchGenerator.get_state(): counts, the searcher's
                                      # get_state() (Optuna: its study pickled, base64, with
                                      # the optuna version)

Crash safety. A new trial is written in this order: its ``params.json``/``params.pkl``, this
state (which already counts it and names it in ``last_trial``), then its journal entry.
A driver killed between the last two leaves a trial the journal never heard of: a restore
rebuilds it from ``last_trial`` and its ``params.pkl``, so a suggestion is neither lost nor
made twice. A driver killed before the state was written leaves the searcher as it was
before the suggestion: the restored sweep asks again (a seeded searcher suggests the same).
Ends of trials the saved state had not heard of yet are told on restore.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from typing import Any

from tune_ckpt.driver.scheduling import Scheduling
from tune_ckpt.journal import Journal
from tune_ckpt.result_files import ResultFiles, pickle_config, read_params
from tune_ckpt.search import SearchGenerator
from tune_ckpt.search.searcher import SearcherStateError
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation
from tune_ckpt.trial import Trial, TrialStatus
from tune_ckpt.trial_naming import experiment_tag, name_trials

logger = logging.getLogger(__name__)

STATE_FILE = "searcher_state.json"
FORMAT = 1


def build_trial(
    trainable_name: str, tag: str, index: int, config: dict[str, Any], space: dict[str, Any]
) -> Trial:
    """A new PENDING trial: id ``<tag>_<index>``, Ray Tune's experiment tag, the default
    folder ``<trainable>_<id>`` (the TuneConfig's creators may rename it)."""
    trial_id = f"{tag}_{index:05d}"
    trial = Trial(trial_id, config, paths.join(f"{trainable_name}_{trial_id}"))
    trial.trainable_name = trainable_name
    trial.experiment_tag = experiment_tag(index, config, space)
    return trial


class TrialSource:
    """The trials a searcher suggests, one at a time when the driver has room for one.

    Args:
        generator: the sweep's ``SearchGenerator``; None when trials were made up front.
        trials: the sweep's trial list (shared with the display and the results), which
            new trials join.
        experiment, journal, scheduling: where new trials are recorded and who hears of them.
        trainable_name, tag: for new trials' ids and folders.
        name_creators: ``TuneConfig.trial_name_creator`` and ``trial_dirname_creator``.
        reserved: the experiment's own file names, which no trial folder may take.
    """

    def __init__(
        self,
        generator: SearchGenerator | None,
        trials: list[Trial],
        experiment: StorageLocation,
        journal: Journal,
        scheduling: Scheduling,
        trainable_name: str,
        tag: str,
        name_creators: tuple[Callable[[Any], str] | None, Callable[[Any], str] | None] = (
            None,
            None,
        ),
        reserved: Collection[str] = (),
    ) -> None:
        self._generator = generator
        self._trials = trials
        self._experiment = experiment
        self._journal = journal
        self._sched = scheduling
        self._trainable_name = trainable_name
        self._tag = tag
        self._creators = name_creators
        self._reserved = reserved
        self._created = 0
        self._told: set[str] = set()
        self._last: dict[str, Any] | None = None
        self._waiting = False  # the searcher said "not now": ask after a trial ends
        self._closed = generator is None
        self._written: str | None = None

    @property
    def open(self) -> bool:
        """Whether the searcher may still suggest trials."""
        if self._closed or self._generator is None:
            return False
        return not self._generator.is_finished()

    # -- creating trials --------------------------------------------------------------------

    def add_trial(self, pending: Any) -> bool:
        """Create one trial and append it to ``pending``, unless a new trial already waits
        there unchosen, the searcher has nothing now, or nothing ever again."""
        if not self.open or self._waiting or self._generator is None:
            return False
        if any(t.status == TrialStatus.PENDING for t in pending):
            return False
        index = self._created
        trial_id = f"{self._tag}_{index:05d}"
        config = self._generator.next_config(trial_id)
        if config is None:
            self._waiting = not self._generator.is_finished()
            return False
        trial = build_trial(
            self._trainable_name, self._tag, index, config, self._generator.param_space
        )
        self._name(trial)
        try:
            pickled = pickle_config(trial.config)
        except Exception as exc:
            raise TypeError(
                f"{type(self._generator.searcher).__name__} suggested a config for trial "
                f"{trial_id} that cannot be persisted ({type(exc).__name__}: {exc}): a config "
                "must pickle with cloudpickle"
            ) from exc
        ResultFiles(self._experiment, trial.trial_dir).write_params(trial.config, pickled)
        self._created = index + 1
        self._last = trial.to_json()
        self._trials.append(trial)
        self._sched.add([trial])
        self.save_state()  # counts the trial before the journal names it (module docstring)
        self._journal.record(trial)
        self._journal.flush()
        self._sched.save_state()
        pending.append(trial)
        return True

    def _name(self, trial: Trial) -> None:
        name_trials([trial], *self._creators, reserved=self._reserved)
        if any(t.trial_dir == trial.trial_dir for t in self._trials):
            raise ValueError(
                f"TuneConfig(trial_dirname_creator) returned {trial.trial_dir!r} for trial "
                f"{trial.trial_id}, the folder of an earlier trial: each trial needs its own"
            )

    def stalled(self) -> None:
        """The searcher suggests nothing while no trial runs or waits: nothing can change
        its mind, so the sweep ends here."""
        if self._generator is not None and self.open:
            logger.warning(
                "%s suggested no trial while none runs: ending the sweep after %d trials",
                type(self._generator.searcher).__name__,
                self._created,
            )
        self._closed = True

    # -- what the searcher hears ------------------------------------------------------------

    def result(self, trial: Trial, result: dict[str, Any]) -> None:
        """A new result of a trial."""
        if self._generator is not None and trial.trial_id not in self._told:
            self._generator.on_trial_result(trial.trial_id, result)

    def completed(self, trial: Trial) -> None:
        """A trial ended (TERMINATED or ERROR): the searcher hears it once."""
        if self._generator is None or trial.trial_id in self._told:
            return
        if trial.status not in (TrialStatus.TERMINATED, TrialStatus.ERROR):
            return
        self._told.add(trial.trial_id)
        self._waiting = False
        self._generator.on_trial_complete(
            trial.trial_id,
            result=dict(trial.last_result) or None,
            error=trial.status == TrialStatus.ERROR,
        )

    # -- state ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What ``searcher_state.json`` holds (see the module docstring)."""
        assert self._generator is not None
        return {
            "format": FORMAT,
            "trial_tag": self._tag,
            "created": self._created,
            "told_complete": sorted(self._told),
            "last_trial": self._last,
            "generator": self._generator.get_state(),
        }

    def save_state(self) -> None:
        """Write the state when it changed (a no-op without a searcher)."""
        if self._generator is None:
            return
        data = json.dumps(self.state(), sort_keys=True)
        if data != self._written:
            self._experiment.write_bytes(STATE_FILE, data.encode())
            self._written = data

    def restore(self, restored: list[Trial]) -> None:
        """Continue from the saved state; ``restored`` are the trials of the journal (with
        the statuses the restore gave them), already in the shared trial list."""
        if self._generator is None:
            return
        if not self._experiment.exists(STATE_FILE):
            logger.warning(
                "%s has no saved state in %s: it starts afresh",
                type(self._generator.searcher).__name__,
                self._experiment.uri(),
            )
            self._created = len(restored)
            return
        try:
            saved = json.loads(self._experiment.read_bytes(STATE_FILE))
        except ValueError as exc:
            raise SearcherStateError(
                f"{self._experiment.uri(STATE_FILE)} is not a saved searcher state ({exc})"
            ) from exc
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise SearcherStateError(
                f"{self._experiment.uri(STATE_FILE)} has format "
                f"{saved.get('format') if isinstance(saved, dict) else saved!r:.40}; this "
                f"tune_ckpt reads format {FORMAT}"
            )
        self._generator.set_state(saved["generator"])
        self._tag = str(saved["trial_tag"])
        self._created = int(saved["created"])
        self._told = set(saved["told_complete"])
        self._last = saved.get("last_trial")
        known = {t.trial_id for t in restored}
        if self._last is not None and self._last["trial_id"] not in known:
            self._rejournal(Trial.from_json(self._last))
        for trial in restored:
            self.completed(trial)  # ends the saved state had not heard of yet
        self.save_state()

    def _rejournal(self, trial: Trial) -> None:
        """The newest trial was counted but the driver died before journaling it."""
        exact = read_params(self._experiment, trial.trial_dir)
        if exact is not None:
            trial.config = exact
        trial.status = TrialStatus.PENDING
        self._trials.append(trial)
        self._sched.add([trial])
        self._journal.record(trial)
        self._journal.flush()
        logger.info("trial %s was suggested before the driver stopped: it runs now", trial)
