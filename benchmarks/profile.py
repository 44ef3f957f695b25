"""Profile the workloads whose targets are not met: ``python -m benchmarks.profile
[--only NAME ...] [--frameworks tune_ckpt ray_tune] [--repeat N [--pick median|max|min]]
[--tag TAG]``.

Each workload runs once per framework, in a fresh process with its own Ray instance (the
same code as ``python -m benchmarks``). py-spy samples, idle time included, the driver
(``py-spy record -- python ...``) and every Ray worker process it starts, where the trial
actors run and write their checkpoints (``py-spy record --pid``, attached as soon as the
process runs ``default_worker.py``: ``--subprocesses`` loses a worker at the exec with which
Ray starts it). ``BENCH_EVENTS`` makes the benchmark trainables and a few wrapped functions
of the framework record wall-clock events (``benchmarks/timeline.py``); the Ray session's
own logs add Ray's side (leases, worker processes, object pulls, health checks).

With ``--repeat N`` each workload runs N times per framework and the run with the median
(or ``--pick``) seconds is written out. Written to ``benchmarks/profiles/`` (a few KB each;
the traces are discarded unless ``--keep-trace``):

* ``WORKLOAD.FRAMEWORK[.TAG].profile.txt``: for the driver's sweep thread and the trial
  workers' main threads (and their checkpoint I/O threads), where the wall time of each
  ``fit()`` goes, by category, then the top collapsed stacks.
* ``WORKLOAD.FRAMEWORK[.TAG].timeline.txt``: the events in time order from the start of each
  ``fit()``, then each trial's path: the time between its consecutive events and, under each
  gap, what its worker process was doing then according to the profile.
"""

from __future__ import annotations

import argparse
import collections
import glob
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks import timeline

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "profiles")
UNMET = ("large_checkpoints", "crash_recovery", "node_loss")
FRAMEWORKS = ("tune_ckpt", "ray_tune")

Frame = tuple[str, str]  # (function, short file name)
Stack = tuple[Frame, ...]  # root first


# -- running ---------------------------------------------------------------------------------


def child(workload: str, which: str) -> None:
    """The profiled process: the benchmark's driver, with the driver-side spans wrapped."""
    from benchmarks.workloads import WORKLOADS, framework

    tune = framework(which)
    timeline.instrument_driver(which)
    storage = tempfile.mkdtemp(prefix=f"bench_profile_{workload}_{which}_")
    timeline.event("driver start", workload=workload, framework=which)
    try:
        figures = WORKLOADS[workload](tune, storage)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    timeline.event("figures", **figures)
    print("BENCH " + json.dumps({"workload": workload, "framework": which, **figures}))


def py_spy() -> str:
    found = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(found):
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


def _command_line(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        pid = _parent(pid)
        if pid == ancestor:
            return True
    return False


class WorkerSampler:
    """Attaches ``py-spy record --pid`` to each Ray worker process started under ``root``.

    A Ray worker starts as ``setup_worker.py`` and execs into ``default_worker.py`` with the
    same pid; ``py-spy --subprocesses`` loses a process at such an exec, so each worker is
    attached on its own once it runs ``default_worker.py``."""

    def __init__(self, root: int, rate: int, work: str) -> None:
        self.root, self.rate, self.work = root, rate, work
        self.traces: list[tuple[int, str, float]] = []  # (pid, trace file, attach time)
        self._seen: set[int] = set()
        self._spies: list[tuple[int, subprocess.Popen[bytes], float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-sampler", daemon=True)
        self._thread.start()

    def _attach(self, pid: int, attempt: int) -> None:
        trace = os.path.join(self.work, f"worker.{pid}.{attempt}.json")
        command = [
            py_spy(), "record", "--pid", str(pid), "--idle", "--nonblocking",
            "--rate", str(self.rate), "--format", "chrometrace", "--output", trace,
        ]  # fmt: skip
        started = time.time()
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._spies.append((pid, spy, started, attempt))
        self.traces.append((pid, trace, started))

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) in self._seen:
                    continue
                pid = int(name)
                argv = _command_line(pid)
                if len(argv) < 2 or not argv[1].endswith("default_worker.py"):
                    continue
                self._seen.add(pid)
                if _descends_from(pid, self.root):
                    self._attach(pid, 0)
            # py-spy gives up on a process caught too early in its start: attach again.
            for pid, spy, started, attempt in list(self._spies):
                code = spy.poll()
                if code not in (None, 0) and attempt < 5 and os.path.exists(f"/proc/{pid}"):
                    self._spies.remove((pid, spy, started, attempt))
                    self._attach(pid, attempt + 1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for _, spy, _, _ in self._spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(timeout=30)


def record(
    workload: str, which: str, rate: int, work: str, timeout: float
) -> tuple[str, list[tuple[int, str, float]], str]:
    """Run one workload with py-spy on its driver and on each of its Ray workers. Returns
    the driver's trace, the workers' (pid, trace, attach time) and the events file."""
    trace = os.path.join(work, f"{workload}.{which}.driver.json")
    events = os.path.join(work, f"{workload}.{which}.events.jsonl")
    command = [
        py_spy(), "record", "--idle", "--nonblocking", "--rate", str(rate),
        "--format", "chrometrace", "--output", trace, "--",
        sys.executable, "-m", "benchmarks.profile", "--child", workload, which,
    ]  # fmt: skip
    env = {**os.environ, timeline.ENV: events}
    spy = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers = WorkerSampler(spy.pid, rate, work)
    try:
        _, stderr = spy.communicate(timeout=timeout)
    finally:
        workers.close()
    if spy.returncode != 0 or not os.path.exists(trace):
        raise RuntimeError(f"{workload}/{which} failed:\n{stderr[-3000:]}")
    done = [(pid, path, at) for pid, path, at in workers.traces if os.path.exists(path)]
    return trace, done, events


# -- reading the trace -----------------------------------------------------------------------


@dataclass
class Thread:
    """One sampled thread: its stack over time, as (start, end, stack) on py-spy's clock."""

    pid: int
    tid: int
    command: str = ""
    spans: list[tuple[float, float, Stack]] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        """The process's main thread (the others start in ``Thread._bootstrap``)."""
        return bool(self.spans) and self.spans[0][2][0][0] != "Thread._bootstrap"


def short_file(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3.11/", "/lib/python3.10/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def read_trace(path: str) -> dict[tuple[int, int], Thread]:
    """py-spy's Chrome trace (begin/end events of frames, per thread) as stack spans. Stacks
    leave out py-spy's process and thread pseudo-frames; a process's own pseudo-frame gives
    its command line."""
    with open(path) as f:
        trace = json.load(f)
    threads: dict[tuple[int, int], Thread] = {}
    open_frames: dict[tuple[int, int], list[tuple[str, str]]] = collections.defaultdict(list)
    since: dict[tuple[int, int], float] = {}
    for item in trace:
        key = (item["pid"], item["tid"])
        thread = threads.setdefault(key, Thread(*key))
        ts = item["ts"] / 1e6
        frames = open_frames[key]
        if key in since and since[key] != ts:
            stack = tuple(f for f in frames if not f[0].startswith(("process ", "thread (")))
            if stack:
                thread.spans.append((since[key], ts, stack))
        since[key] = ts
        name = item["name"]
        if name.startswith(f"process {item['pid']}:"):
            thread.command = name.split(":", 1)[1].strip('"')
        if item["ph"] == "B":
            frames.append((name, short_file(item["args"].get("filename", ""))))
        elif frames:
            frames.pop()
    return threads


def read_events(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return sorted((json.loads(line) for line in f), key=lambda e: e.get("t0", e["t"]))


# -- what a stack is doing -------------------------------------------------------------------

# Leaf first: the first frame that matches names the category. (function, file fragment).
RULES: list[tuple[str, str, str]] = [
    ("event", "benchmarks/timeline.py", "profiling hooks (benchmarks/timeline.py)"),
    ("hash_chunks", "tune_ckpt/storage", "BLAKE3 hash (reading the file, hashing)"),
    ("file_chunks", "tune_ckpt/storage", "BLAKE3 hash (reading the file, hashing)"),
    ("DurableFolder._read_buffer", "tune_ckpt/", "allocate the 8 MiB hash buffer"),
    ("DurableFolder.__exit__", "tune_ckpt/", "wait for the file fsync (I/O thread)"),
    ("_copy_and_sync", "tune_ckpt/", "copy + fsync of a file"),
    ("_write_and_sync", "tune_ckpt/", "write + fsync (manifest, small files)"),
    ("fsync_path", "tune_ckpt/storage/local_io", "fsync of the checkpoint file"),
    ("fsync_path", "tune_ckpt/", "fsync of the folders"),
    ("publish_local", "tune_ckpt/storage/staging", "rename into place"),
    ("CheckpointStore.stage_local", "tune_ckpt/", "create the staging folder"),
    ("verify", "tune_ckpt/storage/reading", "restore: verify (re-hash)"),
    ("CheckpointStore.commit_staged", "tune_ckpt/", "commit: other"),
    ("save_checkpoint", "benchmarks/workloads.py", "trainable writes the checkpoint"),
    ("load_checkpoint", "benchmarks/workloads.py", "trainable reads the checkpoint"),
    ("setup", "benchmarks/workloads.py", "trainable setup"),
    ("step", "benchmarks/workloads.py", "trainable step"),
    ("_pyarrow_fs_copy_files", "ray/", "Ray Tune: copy the checkpoint to storage"),
    ("rmtree", "shutil.py", "delete a temporary folder"),
    ("_find_and_load", "", "import modules"),
    ("connect", "ray/_private/worker.py", "connect to Ray (worker or driver)"),
    ("init", "ray/_private/worker.py", "ray.init"),
    ("load_actor_class", "ray/_private/function_manager.py", "load the actor class (unpickle)"),
    ("TrialActor.__init__", "tune_ckpt/", "actor __init__ (tune_ckpt, other)"),
    ("wait", "ray/_private/worker.py", "ray.wait: waiting for workers"),
    ("get", "ray/_private/worker.py", "ray.get"),
    ("GlobalState.node_table", "ray/_private/state.py", "ray.nodes(): cluster state"),
    ("put", "ray/_private/worker.py", "ray.put"),
    ("kill", "ray/_private/worker.py", "ray.kill"),
    ("TrialRunner._on_saved", "tune_ckpt/", "driver: record a checkpoint (journal, results)"),
    ("TrialRunner._shutdown", "tune_ckpt/", "driver: stop the actors"),
    ("TrialRunner._release", "tune_ckpt/", "driver: release a failed actor"),
    ("TrialRunner._start_fresh", "tune_ckpt/", "driver: request an actor"),
    ("Tuner._new_experiment", "tune_ckpt/", "driver: set up the experiment"),
    ("TuneController._maybe_update_trial_queue", "ray/tune", "Ray Tune: driver loop, other"),
    ("TuneController.checkpoint", "ray/tune", "Ray Tune: save experiment state"),
    ("_ExperimentCheckpointManager", "ray/tune", "Ray Tune: save experiment state"),
    ("RayActorManager.next", "ray/air", "Ray Tune: actor manager (waiting, polling)"),
    ("node_loss", "benchmarks/workloads.py", "benchmark: node-removal loop"),
]


def category(stack: Stack, main: bool) -> str:
    """What a thread is doing, from its stack (root first)."""
    leaf = stack[-1]
    if leaf[0] == "Worker.main_loop" or (not main and leaf[0] in ("Condition.wait", "_worker")):
        return "idle: waiting for a call" if main else "idle"
    for function, where in reversed(stack):
        for name, fragment, label in RULES:
            if function.endswith(name) and fragment in where:
                return _imported(stack) if name == "_find_and_load" else label
    for _function, where in reversed(stack):
        if where.startswith("tune_ckpt/"):
            return "tune_ckpt, other"
        if where.startswith("ray/tune") or where.startswith("ray/train"):
            return "Ray Tune, other"
    return f"other: {leaf[0]} ({leaf[1]})"


ENTRY_SCRIPTS = ("default_worker.py", "benchmarks/profile.py", "<frozen runpy>")


def _imported(stack: Stack) -> str:
    """``import PACKAGE`` (``-> PACKAGE`` it imports in turn), from the modules being run."""
    modules = [
        where for function, where in stack
        if function == "<module>" and not where.endswith(ENTRY_SCRIPTS) and "<frozen" not in where
    ]  # fmt: skip
    packages: list[str] = []
    for where in modules:
        package = where.split("/", 1)[0].removesuffix(".py")
        if package not in packages:
            packages.append(package)
    return "import " + " -> ".join(packages[:2]) if packages else "import modules"


def clip(
    spans: list[tuple[float, float, Stack]], start: float, end: float
) -> list[tuple[float, float, Stack]]:
    return [(max(a, start), min(b, end), s) for a, b, s in spans if b > start and a < end]


def collapsed(stack: Stack, depth: int = 5) -> str:
    """The leaf-most ``depth`` frames, leaf first, without the profiling wrappers."""
    frames = [f for f in stack if not (f[1] == "benchmarks/timeline.py" and f[0] != "event")]
    noise = ("tracing_helper", "importlib", "client_mode_hook", "auto_init_hook")
    frames = [f for f in frames if not any(n in f[1] for n in noise)]
    return " < ".join(
        f"{name.replace('_trainables.<locals>.', '')} "
        f"({where if name == '<module>' else where.rsplit('/', 1)[-1]})"
        for name, where in frames[::-1][:depth]
    )


# -- putting trace and events together -------------------------------------------------------

SUB_SPAN_OF = ("save (whole)",)
UNSAMPLED = "process start (setup_worker.py, exec, interpreter) before the first sample"


@dataclass
class Worker:
    """A Ray worker process that hosted trials."""

    pid: int
    process_start: float
    node: str
    trials: list[tuple[float, str]] = field(default_factory=list)  # (setup start, trial id)
    last_event: float = 0.0

    def trial_at(self, t: float) -> str:
        current = self.trials[0][1]
        for since, trial in self.trials:
            if since <= t + 1e-3:
                current = trial
        return current

    def hosting(self, trial: str) -> tuple[float, float] | None:
        """When this process worked for ``trial``: from its start (the first trial) or the
        trial's setup (a reused actor) to the next trial's setup or its last event."""
        for index, (since, hosted) in enumerate(self.trials):
            if hosted == trial:
                begin = self.process_start if index == 0 else since
                end = self.trials[index + 1][0] if index + 1 < len(self.trials) else self.last_event
                return begin, end
        return None


@dataclass
class Run:
    workload: str
    framework: str
    threads: dict[tuple[int, int], Thread]
    events: list[dict[str, Any]]
    driver_pid: int = 0
    offset: float = 0.0  # wall clock = trace time + offset
    workers: dict[int, Worker] = field(default_factory=dict)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def _first_span(threads: list[Thread], suffix: str, where: str = "") -> float | None:
    """Trace time of the first sample inside a function named ``...suffix``."""
    return min(
        (a for t in threads for a, _, stack in t.spans
         if any(n.endswith(suffix) and where in f for n, f in stack)),
        default=None,
    )  # fmt: skip


def _shift(threads: dict[tuple[int, int], Thread], offset: float) -> None:
    for thread in threads.values():
        thread.spans = [(a + offset, b + offset, s) for a, b, s in thread.spans]


def assemble(
    workload: str,
    which: str,
    driver_trace: str,
    worker_traces: list[tuple[int, str, float]],
    events_path: str,
) -> Run:
    """Read the traces and events, put every trace on the wall clock (each on the first
    sample inside a function whose start an event records) and find the fit() windows."""
    run = Run(workload, which, read_trace(driver_trace), read_events(events_path))
    start = next(e for e in run.events if e["event"] == "driver start")
    run.driver_pid = start["pid"]
    fits = [e for e in run.events if e["event"] == "fit" and e["pid"] == run.driver_pid]
    first = _first_span(list(run.threads.values()), "Tuner.fit")
    run.offset = fits[0]["t0"] - first if first is not None and fits else 0.0
    _shift(run.threads, run.offset)
    setups = {}
    for e in run.events:
        if e["event"] == "setup start":
            setups.setdefault(e["pid"], e["t"])
    for pid, path, attached in worker_traces:
        threads = {k: t for k, t in read_trace(path).items() if t.spans}
        first = _first_span(list(threads.values()), "setup", "benchmarks/workloads.py")
        offset = setups[pid] - first if first is not None and pid in setups else attached
        _shift(threads, offset)
        for key, thread in threads.items():
            known = run.threads.setdefault(key, Thread(*key, command=thread.command))
            known.spans = sorted(known.spans + thread.spans, key=lambda span: span[0])
    names = (
        ["clean run (no crash)", "crash run"] if workload == "crash_recovery" and len(fits) == 2
        else [f"fit() #{i + 1}" if len(fits) > 1 else "fit()" for i in range(len(fits))]
    )  # fmt: skip
    run.windows = [(name, e["t0"], e["t"]) for name, e in zip(names, fits, strict=True)]
    for e in run.events:
        if e["event"] == "setup start":
            worker = run.workers.setdefault(
                e["pid"], Worker(e["pid"], e["process_start"], e.get("node", ""))
            )
            worker.trials.append((e["t"], e["trial"]))
        if e["event"] == "figures":
            run.figures = {k: v for k, v in e.items() if k not in ("t", "pid", "thread", "event")}
    for e in run.events:
        worker = run.workers.get(e["pid"])
        if worker is not None:
            worker.last_event = max(worker.last_event, e["t"])
            e.setdefault("trial", worker.trial_at(e.get("t0", e["t"])))
    for thread in run.threads.values():
        # The last change of stack is the last sign of life of a process that was killed.
        worker = run.workers.get(thread.pid)
        if worker is not None and thread.spans:
            worker.last_event = max(worker.last_event, thread.spans[-1][0])
    run.events = sorted(
        run.events + ray_log_events(run.driver_pid), key=lambda e: e.get("t0", e["t"])
    )
    return run


# -- Ray's own logs ---------------------------------------------------------------------------

# (log file glob, regular expression, label): lines of the Ray session's logs that show Ray's
# side of a recovery: leases, worker processes, object pulls, health checks, task failures.
RAY_LOG_LINES = [
    ("gcs_server.out", r"Leasing worker for actor. actor_id=(\w{8})\w* .*node_id=(\w{8})",
     "gcs: lease a worker for actor {0} on node {1}"),
    ("gcs_server.out",
     r"Submitting actor creation task to worker. actor_id=(\w{8})\w* .*node_id=(\w{8})",
     "gcs: worker leased; creating actor {0} on node {1}"),
    ("gcs_server.out", r"Actor creation task succeeded. actor_id=(\w{8})",
     "gcs: actor {0} created"),
    ("gcs_server.out", r"Registering new node. node_id=(\w{8})", "gcs: node {0} registered"),
    ("gcs_server.out", r"Health check failed for node (\w{8})\w*, remaining checks (\d+)",
     "gcs: health check of node {0} failed ({1} left)"),
    ("gcs_server.out", r"Node is dead because the health check failed. node_id=(\w{8})",
     "gcs: node {0} declared dead"),
    ("raylet*.out", r"Started worker process with pid (\d+)", "raylet: started worker process {0}"),
    ("raylet*.out", r"Send pull request for \[(\w{8})\w*\] to client (\w{8})\w* failed",
     "raylet: pull of object {0} from node {1} failed (retried after the pull timeout)"),
    ("python-core-driver-*.log", r"PushActorTask failed because of network error",
     "driver core: actor call failed (network); waiting for death info from the GCS"),
    ("python-core-driver-*.log", r"Task failed: RpcError: RPC error: Socket closed",
     "driver core: actor call failed for good (Socket closed)"),
]  # fmt: skip
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def ray_log_events(driver_pid: int) -> list[dict[str, Any]]:
    """Selected lines of the Ray session the driver started, as events (local-time stamps
    turned into ``time.time()``)."""
    roots = {os.environ.get("RAY_TMPDIR", "/tmp"), "/tmp"}
    sessions = [s for r in roots for s in glob.glob(f"{r}/ray/session_*_{driver_pid}")]
    sessions.sort(key=os.path.getmtime, reverse=True)  # a pid can come round again
    found: list[dict[str, Any]] = []
    for session in sessions[:1]:
        for pattern_file, pattern, label in RAY_LOG_LINES:
            regex = re.compile(pattern)
            for path in glob.glob(os.path.join(session, "logs", pattern_file)):
                with open(path, errors="replace") as f:
                    for line in f:
                        match, stamp = regex.search(line), _STAMP.match(line)
                        if match and stamp:
                            t = time.mktime(time.strptime(stamp[1], "%Y-%m-%d %H:%M:%S"))
                            found.append({"t": t + int(stamp[2]) / 1000, "pid": 0, "event":
                                          "ray: " + label.format(*match.groups())})  # fmt: skip
    return found


# -- the profile report ----------------------------------------------------------------------


def table(totals: dict[str, float], whole: float, limit: int = 14) -> list[str]:
    lines = []
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:limit]:
        lines.append(f"  {100 * seconds / whole:5.1f}%  {seconds:6.2f} s  {label}")
    rest = sum(sorted(totals.values(), reverse=True)[limit:])
    if rest:
        lines.append(f"  {100 * rest / whole:5.1f}%  {rest:6.2f} s  (other categories)")
    return lines


def top_stacks(spans: list[tuple[float, float, Stack]], main: bool, limit: int) -> list[str]:
    totals: dict[str, float] = collections.Counter()
    for a, b, stack in spans:
        if not category(stack, main).startswith("idle"):
            totals[collapsed(stack)] += b - a
    return [
        f"  {seconds:6.2f} s  {stack}"
        for stack, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    ]


def by_category(spans: list[tuple[float, float, Stack]], main: bool) -> dict[str, float]:
    totals: dict[str, float] = collections.Counter()
    for a, b, stack in spans:
        totals[category(stack, main)] += b - a
    return totals


def profile_report(run: Run, rate: int, top: int) -> str:
    out = [
        f"# {run.workload} on {run.framework}: py-spy record --idle --nonblocking, {rate} Hz, "
        "on the driver and on each Ray worker process (attached once it runs default_worker.py)",
        f"# {time.strftime('%Y-%m-%d')}, 2 shared cores (other work ran at the same time):",
        "# read the shares, not the seconds. Figures of this profiled run: "
        + json.dumps({k: round(v, 3) for k, v in run.figures.items()}),
        "# Categories: the leaf-most recognised frame of each sampled stack "
        "(benchmarks/profile.py, RULES).",
    ]
    for name, start, end in run.windows:
        whole = end - start
        out += ["", f"## {name}: fit() took {whole:.2f} s", ""]
        drivers = [
            t for t in run.threads.values()
            if t.pid == run.driver_pid
            and any(n.endswith("Tuner.fit") for a, b, s in clip(t.spans, start, end) for n, _ in s)
        ]  # fmt: skip
        for thread in drivers:
            spans = clip(thread.spans, start, end)
            covered = sum(b - a for a, b, _ in spans)
            totals = by_category(spans, True)
            if whole - covered > 0.01:
                totals["(not sampled)"] = whole - covered
            out.append(f"### driver pid {thread.pid}, the thread running fit(): "
                       "share of the fit() wall time")  # fmt: skip
            out += table(totals, whole)
            out += ["", "  top stacks (leaf first):", *top_stacks(spans, True, top), ""]
        workers = [w for w in run.workers.values() if any(start <= t <= end for t, _ in w.trials)]
        if not workers:
            continue
        main_totals: dict[str, float] = collections.Counter()
        helper_totals: dict[str, float] = collections.Counter()
        main_spans: list[tuple[float, float, Stack]] = []
        rows = []
        for worker in sorted(workers, key=lambda w: w.process_start):
            lo, hi = max(start, worker.process_start), min(end, worker.last_event)
            mine = [t for t in run.threads.values() if t.pid == worker.pid and t.spans]
            first_sample = min((t.spans[0][0] for t in mine), default=hi)
            for thread in mine:
                spans = clip(thread.spans, lo, hi)
                if thread.is_main:
                    main_spans += spans
                    main_totals.update(by_category(spans, True))
                else:
                    busy = {k: v for k, v in by_category(spans, False).items() if k != "idle"}
                    helper_totals.update(busy)
            if first_sample > lo:
                main_totals[UNSAMPLED] += min(first_sample, hi) - lo
            trials = ", ".join(sorted({t for _, t in worker.trials}))
            rows.append(
                f"  pid {worker.pid}: trial {trials}; process start "
                f"{worker.process_start - start:+.2f} s, first sample {first_sample - start:+.2f}"
                f" s, first setup {worker.trials[0][0] - start:+.2f} s, last sign of life "
                f"{worker.last_event - start:+.2f} s"
            )
        worker_seconds = sum(main_totals.values())
        out.append(
            f"### trial workers' main threads: {len(workers)} processes, {worker_seconds:.2f} "
            "worker-seconds (each from its process start, or fit() start, to its last event)"
        )
        out += table(main_totals, worker_seconds)
        if helper_totals:
            out += ["", "  their other threads, busy time only (checkpoint I/O pool):"]
            out += table(helper_totals, worker_seconds, limit=6)
        out += ["", "  processes (times from fit() start):", *rows]
        startup: dict[str, float] = collections.Counter()
        for worker in workers:
            startup.update(worker_mix(run, worker, worker.process_start, worker.trials[0][0]))
        each = sum(startup.values()) / len(workers)
        out += [
            "",
            f"### worker start-up, from process start to the first setup: {each:.2f} s per "
            f"process on average ({len(workers)} processes; idle = started ahead, no call yet)",
            *table({k: v / len(workers) for k, v in startup.items()}, each, limit=10),
        ]
        out += ["", "  top stacks, main threads, idle left out (leaf first):"]
        out += [*top_stacks(main_spans, True, top), ""]
    return "\n".join(out) + "\n"


# -- the timeline ----------------------------------------------------------------------------

SMALL_SAVE_S = 0.2
SAVE_SPANS = ("save (whole)", "persist (copy to storage)")
GLOBAL = ("node removed", "node remove returned; adding a node", "node added", "ray: node dead",
          "ray: node alive")  # fmt: skip
_QUIET = ("t", "t0", "pid", "thread", "event", "path", "process_start")


def _fields(e: dict[str, Any]) -> str:
    shown = {k: v for k, v in e.items() if k not in _QUIET}
    if "node" in shown:
        shown["node"] = str(shown["node"])[:8]
    return " ".join(f"{k}={v}" for k, v in shown.items())


def _nest(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, list]]:
    """Top-level events, and the sub-spans of each save/restore span (by index)."""
    parents = [(i, e) for i, e in enumerate(events) if e["event"] in SUB_SPAN_OF and "t0" in e]
    children: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    top = []
    for e in events:
        start = e.get("t0", e["t"])
        host = next(
            (i for i, p in parents if p is not e and p["pid"] == e["pid"]
             and p["t0"] - 1e-4 <= start and e["t"] <= p["t"] + 1e-3),
            None,
        )  # fmt: skip
        if host is None:
            top.append(e)
        else:
            children[id(events[host])].append(e)
    return top, children


def _span_text(e: dict[str, Any], children: dict[int, list]) -> str:
    parts: dict[str, float] = {}
    for child in children.get(id(e), []):
        took = child["t"] - child.get("t0", child["t"])
        parts[child["event"]] = parts.get(child["event"], 0.0) + took
    inner = ", ".join(
        f"{label} {seconds:.3f}" for label, seconds in parts.items() if seconds >= 5e-4
    )
    return f"{e['event']}: {inner}" if inner else e["event"]


def timeline_report(run: Run) -> str:
    out = [
        f"# {run.workload} on {run.framework}: wall-clock events, seconds from the start of "
        "each fit() (time.time() in every process; spans show their duration)",
        "# from the benchmark trainables (benchmarks/workloads.py) and wrapped framework "
        "functions (benchmarks/timeline.py); worker process starts from /proc.",
        f"# {time.strftime('%Y-%m-%d')}, 2 shared cores: read proportions, not seconds.",
    ]
    for name, start, end in run.windows:
        inside = [
            e for e in run.events
            if start - 1e-3 <= e.get("t0", e["t"]) <= end + 1e-3
            and e["event"] not in ("figures", "driver start", "driver: suspect nodes")
        ]  # fmt: skip
        top, children = _nest(inside)
        saves = [e for e in top if e["event"] in SAVE_SPANS]
        # Many small checkpoints are summarised; a handful (large ones) are all listed.
        small = [e for e in saves if e["t"] - e["t0"] < SMALL_SAVE_S] if len(saves) > 12 else []
        # Outside node loss, Ray's log adds only its worker process starts.
        quiet = run.workload != "node_loss"
        shown = [
            e for e in top
            if not (e in small or (e["event"] == "driver: checkpoint recorded" and small))
            and not (quiet and e["pid"] == 0 and "started worker process" not in e["event"])
        ]  # fmt: skip
        for worker in run.workers.values():
            for since, trial in worker.trials[:1]:
                if start <= since <= end:
                    shown.append({"t": worker.process_start, "pid": worker.pid, "trial": trial,
                                  "event": "worker process started (from /proc)"})  # fmt: skip
        shown.sort(key=lambda e: e.get("t0", e["t"]))
        out += ["", f"## {name}: fit() took {end - start:.3f} s", ""]
        for e in shown:
            begin = e.get("t0", e["t"])
            took = f"{e['t'] - begin:7.3f}s" if "t0" in e else " " * 8
            who = {run.driver_pid: "driver", 0: "ray log"}.get(e["pid"], f"worker {e['pid']}")
            text = _span_text(e, children) if e["event"] in SUB_SPAN_OF else e["event"]
            out.append(f"{begin - start:+8.3f} {took} {who:13} {text}  {_fields(e)}".rstrip())
        if small:
            durations = sorted(e["t"] - e["t0"] for e in small)
            out.append(
                f"  ({len(small)} checkpoint saves under {SMALL_SAVE_S * 1000:.0f} ms each, left "
                f"out: median {1000 * durations[len(durations) // 2]:.1f} ms, max "
                f"{1000 * durations[-1]:.1f} ms, each with its 'driver: checkpoint recorded')"
            )
        if (name, start, end) == run.windows[-1]:  # the paths of the last fit() only
            out += trial_paths(run, name, start, end, shown)
    return "\n".join(out) + "\n"


def worker_mix(run: Run, worker: Worker, start: float, end: float) -> dict[str, float]:
    """What a worker's main thread did between ``start`` and ``end``, by category; the time
    after its process started and before py-spy first sampled it is counted apart."""
    start, end = max(start, worker.process_start), min(end, worker.last_event)
    totals: dict[str, float] = collections.Counter()
    if end <= start:
        return totals
    for thread in run.threads.values():
        if thread.pid == worker.pid and thread.is_main:
            totals.update(by_category(clip(thread.spans, start, end), True))
            first = thread.spans[0][0]
            if first > start:
                totals[UNSAMPLED] += min(first, end) - start
    return totals


def trial_paths(
    run: Run, name: str, start: float, end: float, shown: list[dict[str, Any]]
) -> list[str]:
    """Each trial's events in order and the time between consecutive ones: where the trial's
    share of the wall time went. Under a gap of 50 ms or more, what the trial's worker
    process was doing then, from the profile."""
    trials = sorted({e["trial"] for e in shown if isinstance(e.get("trial"), str)})
    out = []
    _, children = _nest([e for e in run.events if start - 1e-3 <= e.get("t0", e["t"]) <= end])
    for trial in trials:
        hosts = [w for w in run.workers.values() if any(t == trial for _, t in w.trials)]
        points: list[tuple[float, str, dict[str, Any] | None]] = [(start, "fit() starts", None)]
        early = []
        # Ray's log lines count for a trial between a node loss and the trial's next setup.
        lost = min((e["t"] for e in shown if e["event"] == "node removed"), default=end)
        back = min(
            (e["t"] for e in shown
             if e["event"] == "setup start" and e.get("trial") == trial and e["t"] > lost),
            default=lost,
        )  # fmt: skip
        for e in shown:
            ray_side = e["pid"] == 0 and lost <= e["t"] <= back and "health check" not in e["event"]
            if e.get("trial") != trial and e["event"] not in GLOBAL and not ray_side:
                continue
            if e.get("t0", e["t"]) < start:
                early.append(f"{e['event']} at {e.get('t0', e['t']) - start:+.3f}")
            elif "t0" in e:
                points.append((e["t0"], "begin", e))
                points.append((e["t"], "end", e))
            else:
                points.append((e["t"], e["event"], None))
        points.append((end, "fit() returns", None))
        points.sort(key=lambda p: p[0])
        out += ["", f"### trial {trial} ({name}): time between its consecutive events"]
        if early:
            out.append(f"  (before fit(): {'; '.join(early)})")
        for (a, label_a, span_a), (b, label_b, span_b) in itertools.pairwise(points):
            if b - a < 0.0005:
                continue
            if span_a is not None and span_a is span_b:
                what = _span_text(span_a, children)
            else:
                what = (
                    f"{span_a['event'] + ' ' + label_a if span_a else label_a} -> "
                    f"{span_b['event'] + ' ' + label_b if span_b else label_b}"
                )
            share = 100 * (b - a) / (end - start)
            out.append(f"  {a - start:+7.3f} {b - a:7.3f}s {share:5.1f}%  {what}")
            if b - a < 0.05 or (span_a is not None and span_a is span_b):
                continue
            for worker in hosts:
                hosted = worker.hosting(trial)
                if hosted is None:
                    continue
                mix = worker_mix(run, worker, max(a, hosted[0]), min(b, hosted[1]))
                if sum(mix.values()) > 0.01:
                    parts = sorted(mix.items(), key=lambda kv: -kv[1])[:5]
                    text = ", ".join(f"{label} {seconds:.2f}" for label, seconds in parts)
                    out.append(f"{'':27}worker {worker.pid}: {text}")
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=UNMET, default=None)
    parser.add_argument("--frameworks", nargs="*", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=8, help="collapsed stacks listed")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload and framework")
    parser.add_argument(
        "--pick", choices=("median", "max", "min"), default="median",
        help="with --repeat, the run written out, by the workload's seconds",
    )  # fmt: skip
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--keep-trace", action="store_true", help="keep the Chrome traces")
    parser.add_argument("--tag", default="", help="added to the output file names")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench_profile_")
    tag = f".{args.tag}" if args.tag else ""
    try:
        for workload in args.only or list(UNMET):
            for which in args.frameworks:
                runs = []
                for attempt in range(args.repeat):
                    where = os.path.join(work, f"{workload}.{which}.{attempt}")
                    os.makedirs(where)
                    trace, workers, events = record(workload, which, args.rate, where, args.timeout)
                    run = assemble(workload, which, trace, workers, events)
                    print(f"{workload}/{which}: {json.dumps(run.figures)}", flush=True)
                    runs.append((run.figures.get("seconds", 0.0), attempt, run, where))
                runs.sort(key=lambda r: (r[0], r[1]))
                index = {"median": (len(runs) - 1) // 2, "max": -1, "min": 0}[args.pick]
                seconds, _, run, where = runs[index]
                base = os.path.join(args.out, f"{workload}.{which}{tag}")
                chosen = "" if len(runs) == 1 else (
                    f"# the {args.pick} of {len(runs)} runs by seconds: "
                    + ", ".join(f"{r[0]:.2f}" for r in runs) + "\n"
                )  # fmt: skip
                with open(f"{base}.profile.txt", "w") as f:
                    f.write(chosen + profile_report(run, args.rate, args.top))
                with open(f"{base}.timeline.txt", "w") as f:
                    f.write(chosen + timeline_report(run))
                if args.keep_trace:
                    shutil.rmtree(f"{base}.traces", ignore_errors=True)
                    shutil.copytree(where, f"{base}.traces")
                print(f"  kept the run of {seconds:.2f} s -> {base}.*.txt", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main()
