"""Noticing a lost node before Ray does: the raylets of the nodes that run trials, probed
from a helper thread four times a second.

Ray learns that a node is gone from its health checks (five failed ones, three seconds
apart, by default: about 15 s); an actor call to the node fails sooner, but still one to
two seconds after the node went (its process must notice the loss, then the driver waits
for the GCS to confirm the actor's death). A raylet's port that refuses connections, or
stops answering, says so at once. Only a node whose raylet has answered this driver before
can be declared lost (a driver that cannot reach raylets at all, through Ray Client or a
firewall, never declares anything), and silence must last ``FailureConfig.node_silence_s``
(timed from the start of the first unanswered probe; None: silence alone never loses a
node). A refusal is final: nothing listens there any more. A node the GCS no longer lists as
alive is lost too. Nodes lost are reported once; the loop restarts their trials.

A raylet that is alive but hung still accepts connections (the kernel completes them), so
it is left to Ray's own health checks.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable

from tune_ckpt.config import FailureConfig, finite_number
from tune_ckpt.driver import drains
from tune_ckpt.errors import DrainError

logger = logging.getLogger(__name__)

PROBE_S = 0.25
"""How often the raylets of the nodes running trials are probed."""
CONNECT_TIMEOUT_S = 1.0
"""How long a probe waits for a connection before it counts as silence."""
LIST_S = 1.0
"""How often the alive nodes' raylets are listed (one GCS call), and sooner for a node not
seen yet."""


class Reach(enum.Enum):
    """What probing a raylet's port found."""

    ANSWERED = "answered"  # a connection was accepted
    REFUSED = "refused"  # nothing listens there: the raylet is gone
    SILENT = "silent"  # no answer in time, or the host is unreachable
    UNLISTED = "unlisted"  # the GCS no longer lists the node as alive


def probe(address: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> Reach:
    """Open and close a TCP connection to ``address:port``."""
    try:
        socket.create_connection((address, port), timeout=timeout_s).close()
    except ConnectionRefusedError:
        return Reach.REFUSED
    except OSError:  # timeouts, unreachable hosts and networks
        return Reach.SILENT
    return Reach.ANSWERED


class NodeVerdicts:
    """Pure: from each node's probes, whether it is lost (see the module docstring)."""

    def __init__(self, silence_s: float | None = FailureConfig.node_silence_s) -> None:
        """``silence_s``: how long a node may stay silent (see the module docstring);
        validated as ``FailureConfig.node_silence_s`` is."""
        self._silence_s = (
            None
            if silence_s is None
            else finite_number("silence_s", silence_s, 0, True, what="None, or seconds")
        )
        self._answered: set[str] = set()
        self._silent_since: dict[str, float] = {}
        self._lost: set[str] = set()

    def reached(self, node: str) -> bool:
        """Whether ``node``'s raylet has answered (so it can be declared lost)."""
        return node in self._answered

    def observe(self, node: str, reach: Reach, started: float, ended: float) -> bool:
        """Record one probe of ``node``, run from ``started`` to ``ended`` (monotonic
        seconds); True the first time it makes the node lost."""
        if node in self._lost:
            return False
        if reach == Reach.ANSWERED:
            self._answered.add(node)
            self._silent_since.pop(node, None)
            return False
        if node not in self._answered:
            return False  # never reachable from here: not ours to judge
        if reach == Reach.SILENT:
            since = self._silent_since.setdefault(node, started)
            if self._silence_s is None or ended - since < self._silence_s:
                return False
        self._lost.add(node)
        return True


class NodeWatch:
    """Probes the raylets of the nodes it is told to watch, in a daemon thread started on
    first use; ``lost()`` hands over the nodes found lost since the last call."""

    def __init__(
        self,
        probe_s: float = PROBE_S,
        raylets: Callable[[], dict[str, tuple[str, int]]] = drains.node_managers,
        silence_s: float | None = FailureConfig.node_silence_s,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._probe_s = probe_s
        self._connect_timeout_s = connect_timeout_s
        self._raylets = raylets
        self._verdicts = NodeVerdicts(silence_s)
        self._lock = threading.Lock()
        self._watched: frozenset[str] = frozenset()
        self._found: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unreadable_logged = False
        self._listed: dict[str, tuple[str, int]] = {}
        self._listed_at = -LIST_S

    def watch(self, nodes: Iterable[str]) -> None:
        """Probe these nodes from now on (the nodes running trials)."""
        watched = frozenset(n for n in nodes if n)
        with self._lock:
            self._watched = watched
        if watched and self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="tune_ckpt-nodes", daemon=True)
            self._thread.start()

    def reached(self, node: str) -> bool:
        """Whether ``node``'s raylet has answered a probe."""
        return self._verdicts.reached(node)

    def lost(self) -> set[str]:
        with self._lock:
            found, self._found = self._found, set()
        return found

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._connect_timeout_s * 2)

    def _run(self) -> None:
        while not self._stop.wait(self._probe_s):
            with self._lock:
                watched = self._watched
            if watched:
                self._probe_round(watched)

    def _probe_round(self, watched: frozenset[str]) -> None:
        now = time.monotonic()
        if now - self._listed_at >= LIST_S or not watched <= set(self._listed):
            try:
                self._listed = self._raylets()
            except DrainError as exc:
                if not self._unreadable_logged:
                    logger.warning("cannot list the nodes' raylets; lost nodes are left to "
                                   "Ray to notice: %s", exc)  # fmt: skip
                    self._unreadable_logged = True
                return
            self._listed_at = now
        raylets = self._listed
        for node in sorted(watched):
            raylet = raylets.get(node)
            started = time.monotonic()
            reach = Reach.UNLISTED if raylet is None else probe(*raylet, self._connect_timeout_s)
            if self._verdicts.observe(node, reach, started, time.monotonic()):
                with self._lock:
                    self._found.add(node)
