"""What a tune_ckpt run left behind, beyond its exit status.

- Checkpoints: ``tune-ckpt verify --json`` over the run's storage root
  (``$HOME/tune_ckpt_results``, every experiment in it); its exit status and counts.
- PBT: the exploits recorded in ``pbt_global.txt``, and every warning or error line of the
  run's output about an exploit or a checkpoint that was missing, skipped or bad (a trial
  restored from nothing, or from another checkpoint than the donor's).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .runner import REPO_ROOT

STORAGE = "tune_ckpt_results"
_LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Warning:")
_TOPIC = re.compile(r"(?i)exploit|clon|donor|checkpoint|restor")
_TROUBLE = re.compile(
    r"(?i)skip|missing|no checkpoint|not found|does not exist|no such file|"
    r"corrupt|bad|does not verify|failed verification|mismatch|cannot|could not|unable"
)


@dataclass
class Checks:
    """The findings for one tune_ckpt run."""

    verify_exit: int | None = None  # None: no experiment folder was left
    verified: int = 0
    bad: int = 0
    unreadable: int = 0
    exploits: int | None = None  # None: no pbt_global.txt (not a PBT run)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verify_exit in (None, 0) and not self.warnings

    def to_json(self) -> dict[str, object]:
        return {
            "verify_exit": self.verify_exit,
            "verified": self.verified,
            "bad": self.bad,
            "unreadable": self.unreadable,
            "pbt_exploits": self.exploits,
            "checkpoint_warnings": self.warnings,
        }


def verify(home: Path, checks: Checks) -> None:
    """``tune-ckpt verify`` on what the run left in its storage root."""
    root = home / STORAGE
    if not root.is_dir() or not any(root.iterdir()):
        return
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, "-m", "tune_ckpt.cli", "verify", "--json", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    checks.verify_exit = done.returncode
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        checks.warnings.append(f"tune-ckpt verify printed no JSON: {done.stderr.strip()[-300:]}")
        return
    checks.verified = int(document.get("verified", 0))
    checks.bad = int(document.get("bad", 0))
    checks.unreadable = int(document.get("unreadable", 0))


def exploits(home: Path) -> int | None:
    """How many exploits the PBT runs recorded (``pbt_global.txt`` lines), or None."""
    logs = list((home / STORAGE).glob("*/pbt_global.txt"))
    if not logs:
        return None
    return sum(len(path.read_text().splitlines()) for path in logs)


def checkpoint_warnings(log: Path) -> list[str]:
    """Warning and error lines of the run's output about exploits or checkpoints that were
    missing, skipped or bad."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if _LEVEL.search(line) and _TOPIC.search(line) and _TROUBLE.search(line):
            found.append(line.strip()[:400])
    return found


def check(home: Path, log: Path) -> Checks:
    """All the checks of one tune_ckpt run."""
    checks = Checks()
    verify(home, checks)
    checks.exploits = exploits(home)
    checks.warnings.extend(checkpoint_warnings(log))
    return checks
