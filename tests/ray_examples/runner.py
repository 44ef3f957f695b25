"""Running one example on one side (Ray Tune or tune_ckpt), isolated from every other run.

Each run gets its own temporary folders: the working directory, ``HOME`` (both Ray Tune's
default storage ``~/ray_results`` and tune_ckpt's ``~/tune_ckpt_results`` live there; Ray
2.60 has no other variable for it) and ``RAY_TMPDIR`` (Ray's session folder and the
``ray_current_cluster`` file, so an example's ``ray.init()`` starts its own local Ray
instead of joining one that another program started with ``ray start`` on this machine).
"""

from __future__ import annotations

import contextlib
import enum
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .rewrite import RewriteError, rewrite

REPO_ROOT = Path(__file__).resolve().parents[2]


class Side(enum.Enum):
    RAY_TUNE = "ray_tune"
    TUNE_CKPT = "tune_ckpt"


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"  # exit status other than 0
    TIMEOUT = "timeout"
    NOT_REWRITTEN = "not rewritten"  # the table does not cover the example


@dataclass
class Run:
    """One example run on one side."""

    example: str
    side: Side
    status: Status
    seconds: float
    returncode: int | None
    log: Path
    home: Path
    tail: list[str]


def examples_dir() -> Path:
    """``ray/tune/examples`` of the installed ``ray`` wheel, found without importing Ray."""
    spec = importlib.util.find_spec("ray")
    if spec is None or spec.origin is None:
        raise SystemExit("ray is not installed")
    return Path(spec.origin).parent / "tune" / "examples"


def _tail(path: Path, lines: int = 15) -> list[str]:
    text = path.read_text(errors="replace").splitlines()
    return text[-lines:]


def _leftover_pids(marker: str) -> list[int]:
    """Processes of this run still alive (Ray's daemons name their session folder, which is
    under this run's own ``RAY_TMPDIR``, in their command lines)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _stop(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signal.SIGKILL)


def prepare(example: str, side: Side, root: Path) -> tuple[list[str], dict[str, str], Path]:
    """Folders, command line and environment of one run under ``root``."""
    work, home = root / "work", root / "home"
    work.mkdir(parents=True)
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")
    source_dir = examples_dir()
    if side is Side.RAY_TUNE:
        script = source_dir / f"{example}.py"
    else:
        code = root / "code"  # the rewritten example and the examples it imports
        code.mkdir()
        pending, done = [example], set()
        while pending:
            name = pending.pop()
            if name in done:
                continue
            done.add(name)
            result = rewrite((source_dir / f"{name}.py").read_bytes())
            (code / f"{name}.py").write_bytes(result.source)
            pending.extend(result.siblings)
        script = code / f"{example}.py"
        # tune_ckpt and the sibling examples, for the driver and Ray's worker processes.
        paths = [str(code), str(REPO_ROOT), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return [sys.executable, str(script), "--smoke-test"], env, work


def run(example: str, side: Side, out_dir: Path, timeout_s: float) -> Run:
    """Run ``example`` with ``--smoke-test`` on ``side``; its output goes to a log file in
    ``out_dir``, its storage stays in the returned ``Run.home`` until :func:`cleanup`."""
    root = Path(tempfile.mkdtemp(prefix=f"rx-{side.value}-{example}-"))
    # Ray puts socket paths (at most 107 bytes) under RAY_TMPDIR: keep it short.
    ray_tmp = tempfile.mkdtemp(prefix="rx", dir="/tmp")
    log = out_dir / f"{example}.{side.value}.log"
    started = time.monotonic()
    try:
        argv, env, work = prepare(example, side, root)
    except RewriteError as error:
        log.write_text(f"not rewritten: {error}\n")
        return Run(example, side, Status.NOT_REWRITTEN, 0.0, None, log, root / "home", [])
    env["RAY_TMPDIR"] = ray_tmp
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode: int | None = process.wait(timeout=timeout_s)
            status = Status.PASS if returncode == 0 else Status.FAIL
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            returncode, status = None, Status.TIMEOUT
    seconds = time.monotonic() - started
    _stop(_leftover_pids(ray_tmp))
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return Run(example, side, status, seconds, returncode, log, root / "home", _tail(log))


def cleanup(result: Run) -> None:
    """Remove the run's temporary folders (its log stays)."""
    shutil.rmtree(result.home.parent, ignore_errors=True)
