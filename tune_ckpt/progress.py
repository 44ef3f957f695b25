"""What the driver prints while a sweep runs (``RunConfig.verbose``).

0: nothing but warnings and errors (through logging); 1: trial starts, checkpoints, ends and a
summary; 2: also every result.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tune_ckpt.trial import Trial


class Progress:
    """Line-oriented progress output."""

    def __init__(self, verbose: int, metric: str | None = None, stream: TextIO | None = None):
        self.verbose = verbose
        self.metric = metric
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def trial_started(self, trial: Trial, restored_from: str | None) -> None:
        if self.verbose >= 1:
            origin = f" from {restored_from}" if restored_from else ""
            self._print(f"[tune_ckpt] trial {trial.trial_id} started{origin} {trial.config}")

    def result(self, trial: Trial, result: dict[str, Any]) -> None:
        if self.verbose >= 2:
            shown = {k: v for k, v in result.items() if not isinstance(v, dict)}
            self._print(f"[tune_ckpt] trial {trial.trial_id} result {shown}")

    def checkpoint(self, trial: Trial, uri: str) -> None:
        if self.verbose >= 1:
            self._print(f"[tune_ckpt] trial {trial.trial_id} checkpoint {uri}")

    def failed(self, trial: Trial, error: str, retrying: bool) -> None:
        if self.verbose >= 1:
            first = error.strip().splitlines()[-1] if error.strip() else "unknown error"
            first = first if len(first) <= 160 else first[:157] + "..."
            what = "failed, restarting" if retrying else "failed"
            self._print(f"[tune_ckpt] trial {trial.trial_id} {what}: {first}")

    def preempted(self, trial: Trial) -> None:
        if self.verbose >= 1:
            self._print(
                f"[tune_ckpt] trial {trial.trial_id} preempted at iteration {trial.iteration}, "
                "rescheduling"
            )

    def finished(self, trial: Trial) -> None:
        if self.verbose >= 1:
            metric = ""
            if self.metric and self.metric in trial.last_result:
                metric = f" {self.metric}={trial.last_result[self.metric]}"
            self._print(
                f"[tune_ckpt] trial {trial.trial_id} {trial.status.value} at iteration "
                f"{trial.iteration}{metric}"
            )

    def summary(self, trials: list[Trial], experiment_uri: str) -> None:
        if self.verbose >= 1:
            counts: dict[str, int] = {}
            for trial in trials:
                counts[trial.status.value] = counts.get(trial.status.value, 0) + 1
            states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            self._print(f"[tune_ckpt] {len(trials)} trials ({states}); results in {experiment_uri}")
