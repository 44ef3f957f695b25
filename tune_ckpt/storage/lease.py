"""The driver's lease on an experiment: one driver per experiment, and no stale markers.

A running ``fit()`` keeps a marker file ``.tune_ckpt_marker_<lease id>`` at the experiment
root. It holds a JSON lease naming the host, the process, the lease id, when the driver
started and its heartbeat (wall clock, seconds since the epoch), with the timeout the lease
states (``timeout_s``). A daemon thread renews the heartbeat every ``timeout_s / 6`` seconds
by rewriting the file through :class:`StorageLocation`, so it works on every storage kind.
Readers judge a lease by the timeout it states: a heartbeat older than that belongs to a
dead driver (killed with SIGKILL, its host lost), and the lease is stale. Hosts' clocks must
agree to well within the timeout. A reader on the driver's own host (same host name and PID
namespace) need not wait: a holder whose process no longer exists is dead at once, so
``Tuner.restore`` right after a driver was killed on the same machine goes ahead.

The timeout is 30 s (a heartbeat every 5 s) unless ``TUNE_CKPT_LEASE_TIMEOUT_S`` says
otherwise when the driver starts; tests set it to a second or two.

A marker whose contents are not a lease (``b"tune_ckpt"``, written by earlier versions,
which never renew it, or a lease being rewritten on a store without atomic writes) is judged
by its file's modification time against the default timeout.

Workers look for the marker of the driver that started them before they commit
(:func:`require`): after a new driver took a stale lease over and removed it, a worker left
running by the dead driver commits nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from tune_ckpt.config import seconds_from_env
from tune_ckpt.errors import STORAGE_ERRORS, ExperimentLockedError, LeaseLostError
from tune_ckpt.storage import paths
from tune_ckpt.storage.location import StorageLocation

logger = logging.getLogger(__name__)

MARKER_PREFIX = ".tune_ckpt_marker_"
TIMEOUT_ENV = "TUNE_CKPT_LEASE_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 30.0
HEARTBEATS_PER_TIMEOUT = 6
"""A lease is renewed this many times per timeout, so a few slow writes do not expire it."""
_KIND = "tune_ckpt_lease"


def lease_timeout_s() -> float:
    """The timeout new leases state: ``TUNE_CKPT_LEASE_TIMEOUT_S`` or 30 seconds."""
    return seconds_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)


def is_marker_name(name: str) -> bool:
    """Whether ``name`` is a marker file (not the temporary sibling of one being rewritten)."""
    rest = name[len(MARKER_PREFIX) :]
    return name.startswith(MARKER_PREFIX) and bool(rest) and "." not in rest


@dataclass(frozen=True)
class LeaseInfo:
    """One marker file as read from storage.

    Attributes:
        name: the marker's file name at the experiment root.
        lease_id: the id in its name.
        host, pid, started: who holds it and since when; None for a marker that is not a
            lease (an earlier version's).
        pid_namespace: the holder's PID namespace (Linux), so a reader on the same host
            can tell whether the process still exists; None where unknown.
        heartbeat: its last renewal (wall clock); a non-lease marker's modification time.
        timeout_s: how old a heartbeat may get before the lease is stale.
    """

    name: str
    lease_id: str
    host: str | None
    pid: int | None
    started: float | None
    heartbeat: float
    timeout_s: float
    pid_namespace: str | None = None

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat."""
        return (time.time() if now is None else now) - self.heartbeat

    def is_stale(self, now: float | None = None) -> bool:
        """Whether the driver holding it is dead: no heartbeat within its timeout, or, seen
        from its own host, no process with its pid any more."""
        return self.age_s(now) > self.timeout_s or self._process_gone()

    def _process_gone(self) -> bool:
        local = self.host == socket.gethostname() and self.pid_namespace is not None
        if not local or self.pid_namespace != _pid_namespace() or self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # it exists, owned by someone else
            return False
        return False

    def holder(self, now: float | None = None) -> str:
        """Who holds it, for messages: ``host h, pid 12 (heartbeat 2.1 s ago)``."""
        age = f"{self.age_s(now):.1f} s ago"
        if self.host is None:
            return f"a marker of an earlier tune_ckpt version (written {age})"
        return f"host {self.host}, pid {self.pid} (heartbeat {age}, timeout {self.timeout_s:g} s)"

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        return {
            "lease_id": self.lease_id,
            "host": self.host,
            "pid": self.pid,
            "heartbeat_age_s": round(self.age_s(now), 3),
            "timeout_s": self.timeout_s,
            "stale": self.is_stale(now),
        }

    def _document(self) -> bytes:
        return json.dumps(
            {
                "kind": _KIND,
                "lease_id": self.lease_id,
                "host": self.host,
                "pid": self.pid,
                "started": self.started,
                "heartbeat": self.heartbeat,
                "timeout_s": self.timeout_s,
                "pid_namespace": self.pid_namespace,
            },
            sort_keys=True,
        ).encode()


def _parse(name: str, data: bytes, mtime: float) -> LeaseInfo:
    lease_id = name[len(MARKER_PREFIX) :]
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("kind") != _KIND:
            raise ValueError("not a lease")
        return LeaseInfo(
            name,
            lease_id,
            str(doc["host"]),
            int(doc["pid"]),
            float(doc["started"]),
            float(doc["heartbeat"]),
            float(doc["timeout_s"]),
            None if doc.get("pid_namespace") is None else str(doc["pid_namespace"]),
        )
    except (ValueError, KeyError, TypeError):
        return LeaseInfo(name, lease_id, None, None, None, mtime, DEFAULT_TIMEOUT_S)


def read_leases(experiment: StorageLocation) -> list[LeaseInfo]:
    """Every marker at the experiment root, by name. A marker deleted between listing and
    reading (its driver finished) is left out."""
    found = []
    for info in experiment.list_dir():
        name = paths.basename(info.path)
        if not info.is_file or not is_marker_name(name):
            continue
        try:
            data = experiment.read_bytes(name)
        except STORAGE_ERRORS:
            if experiment.is_file(name):
                raise
            continue
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        found.append(_parse(name, data, mtime))
    return sorted(found, key=lambda lease: lease.name)


def _locked(experiment: StorageLocation, other: LeaseInfo) -> ExperimentLockedError:
    return ExperimentLockedError(
        f"{experiment.uri()} is being run by another driver: {other.holder()}, lease "
        f"{other.name}. Wait for it to finish; a driver that died is taken over once its "
        f"heartbeat is older than {other.timeout_s:g} s"
    )


def check_free(experiment: StorageLocation) -> None:
    """Raise ExperimentLockedError when a live driver holds the experiment (nothing written)."""
    for other in read_leases(experiment):
        if not other.is_stale():
            raise _locked(experiment, other)


class Lease:
    """A lease this process holds, renewed by a daemon thread until :meth:`release`."""

    def __init__(self, experiment: StorageLocation, info: LeaseInfo) -> None:
        self.experiment = experiment
        self.info = info
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_until_released, name="tune_ckpt-lease", daemon=True
        )

    @property
    def name(self) -> str:
        """The marker file's name: what workers look for."""
        return self.info.name

    def _write(self) -> None:
        self.experiment.write_bytes(self.info.name, self.info._document())

    def _renew_until_released(self) -> None:
        interval = self.info.timeout_s / HEARTBEATS_PER_TIMEOUT
        while not self._stop.wait(interval):
            try:
                if not self.experiment.is_file(self.name):
                    # Taken over (this driver was judged dead) or removed by gc --force:
                    # renewing would revive it under the new holder.
                    logger.error(
                        "the lease %s on %s is gone: another driver took the experiment "
                        "over; this driver's workers can no longer commit checkpoints",
                        self.name,
                        self.experiment.uri(),
                    )
                    return
                self.info = _renewed(self.info)
                self._write()
            except STORAGE_ERRORS as exc:
                logger.warning("could not renew the lease %s: %s", self.name, exc)

    def release(self) -> None:
        """Stop renewing and delete the marker."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.experiment.delete_file(self.name)


def _renewed(info: LeaseInfo) -> LeaseInfo:
    return dataclasses.replace(info, heartbeat=time.time())


def _pid_namespace() -> str | None:
    """This process's PID namespace (Linux); None where there is no such thing."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def _order(lease: LeaseInfo) -> tuple[float, str]:
    return (lease.started if lease.started is not None else lease.heartbeat, lease.lease_id)


def acquire(experiment: StorageLocation) -> Lease:
    """Take the experiment's lease and start renewing it.

    A live lease of another driver raises ExperimentLockedError naming it. Stale ones are
    taken over: logged at INFO and removed. Two drivers starting at once both write their
    lease, then list again: the one with the later start (ties: the larger lease id) backs
    off, removing its lease, and raises ExperimentLockedError.
    """
    timeout = lease_timeout_s()
    others = read_leases(experiment)
    live = [o for o in others if not o.is_stale()]
    if live:
        raise _locked(experiment, live[0])
    for stale in others:
        logger.info(
            "taking over the stale lease %s on %s: %s",
            stale.name,
            experiment.uri(),
            stale.holder(),
        )
        experiment.delete_file(stale.name)
    lease_id = uuid.uuid4().hex
    now = time.time()
    info = LeaseInfo(
        MARKER_PREFIX + lease_id,
        lease_id,
        socket.gethostname(),
        os.getpid(),
        now,
        now,
        timeout,
        _pid_namespace(),
    )
    lease = Lease(experiment, info)
    lease._write()
    rivals = [
        o
        for o in read_leases(experiment)
        if o.name != info.name and not o.is_stale() and _order(o) < _order(info)
    ]
    if rivals:
        experiment.delete_file(info.name)
        raise _locked(experiment, rivals[0])
    lease._thread.start()
    return lease


def require(experiment: StorageLocation, marker: str) -> None:
    """Raise LeaseLostError unless the marker of the driver that started this worker is
    still there; called right before each commit to shared storage publishes (the commit
    guard, with the owner check of ``storage/owner``; one existence check). A
    worker no fit() started (``validate_save_restore``'s, whose marker is no marker name)
    has no lease to check."""
    if is_marker_name(marker) and not experiment.is_file(marker):
        raise LeaseLostError(
            f"not committing: the lease {marker} of the driver that started this worker is "
            f"gone from {experiment.uri()} (the driver died and another one took the "
            "experiment over)"
        )
