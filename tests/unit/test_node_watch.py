"""The lost-node verdicts, and probes of real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tune_ckpt.config import FailureConfig
from tune_ckpt.driver.node_watch import NodeVerdicts, NodeWatch, Reach, probe


@pytest.fixture
def listening() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server.getsockname()
    finally:
        server.close()


def _closed_port() -> tuple[str, int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()  # nothing listens there once closed


def test_probe_tells_a_listening_port_from_a_closed_one(listening: tuple[str, int]) -> None:
    assert probe(*listening) == Reach.ANSWERED
    assert probe(*_closed_port()) == Reach.REFUSED


def test_a_refusal_after_an_answer_loses_the_node_once() -> None:
    verdicts = NodeVerdicts()
    assert not verdicts.reached("a")
    assert not verdicts.observe("a", Reach.ANSWERED, 0.0, 0.0)
    assert verdicts.reached("a")
    assert verdicts.observe("a", Reach.REFUSED, 0.25, 0.25)
    assert not verdicts.observe("a", Reach.REFUSED, 0.5, 0.5)  # reported once


def test_a_node_never_reached_is_never_lost() -> None:
    """A driver that cannot reach raylets (Ray Client, a firewall) declares nothing."""
    verdicts = NodeVerdicts(silence_s=0.1)
    for reach in (Reach.REFUSED, Reach.SILENT, Reach.UNLISTED):
        assert not verdicts.observe("a", reach, 0.0, 10.0)


def test_silence_must_last_from_the_first_unanswered_probe_and_an_answer_resets_it() -> None:
    verdicts = NodeVerdicts(silence_s=3.0)
    verdicts.observe("a", Reach.ANSWERED, 0.0, 0.0)
    assert not verdicts.observe("a", Reach.SILENT, 1.0, 2.0)
    assert not verdicts.observe("a", Reach.SILENT, 2.25, 3.25)
    assert not verdicts.observe("a", Reach.ANSWERED, 3.5, 3.5)  # silent 2.25 s, then back
    assert not verdicts.observe("a", Reach.SILENT, 4.0, 5.0)
    assert not verdicts.observe("a", Reach.SILENT, 5.25, 6.25)
    assert verdicts.observe("a", Reach.SILENT, 6.5, 7.5)  # 3.5 s since 4.0


def test_without_a_silence_limit_only_a_refusal_or_ray_loses_a_node() -> None:
    verdicts = NodeVerdicts(silence_s=None)
    for node in ("a", "b"):
        verdicts.observe(node, Reach.ANSWERED, 0.0, 0.0)
    for second in range(1, 600):
        assert not verdicts.observe("a", Reach.SILENT, second, second + 1.0)
    assert verdicts.observe("a", Reach.REFUSED, 700.0, 700.0)
    assert verdicts.observe("b", Reach.UNLISTED, 700.0, 700.0)


def test_a_node_the_gcs_no_longer_lists_is_lost() -> None:
    verdicts = NodeVerdicts()
    verdicts.observe("a", Reach.ANSWERED, 0.0, 0.0)
    assert verdicts.observe("a", Reach.UNLISTED, 0.25, 0.25)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "3", True])
def test_bad_silence_is_refused_naming_the_value(value: Any) -> None:
    with pytest.raises(ValueError, match=r"silence_s=.* is invalid: None, or"):
        NodeVerdicts(silence_s=value)
    with pytest.raises(ValueError, match=r"node_silence_s=.* is invalid: None, or"):
        FailureConfig(node_silence_s=value)


class _Raylet:
    """A listening socket standing for a raylet: it accepts until ``hang()``, then its
    accept queue (one place) fills and further connections go unanswered, as a raylet
    behind a dropped network link would."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(0)
        self.address = self.server.getsockname()
        self._hung = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.01)
        while not self._hung.is_set():
            with contextlib.suppress(TimeoutError):
                self.server.accept()[0].close()

    def hang(self) -> None:
        self._hung.set()
        self._thread.join()

    def close(self) -> None:
        self.hang()
        self.server.close()


@pytest.mark.parametrize("silence_s", [0.3, None])
def test_the_watch_loses_a_silent_raylet_only_after_its_silence_limit(
    silence_s: float | None,
) -> None:
    raylet = _Raylet()
    rounds: list[float] = []

    def listing() -> dict[str, tuple[str, int]]:
        rounds.append(time.monotonic())
        return {"a": raylet.address}

    watch = NodeWatch(probe_s=0.02, raylets=listing, silence_s=silence_s, connect_timeout_s=0.1)
    try:
        watch.watch(["a"])
        deadline = time.monotonic() + 10
        while not watch.reached("a"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        raylet.hang()
        hung_at = time.monotonic()
        found: set[str] = set()
        while not found and time.monotonic() < hung_at + 1.5:
            found |= watch.lost()
            time.sleep(0.01)
        if silence_s is None:
            assert found == set()
            assert probe(*raylet.address, 0.1) == Reach.SILENT  # it was silent all along
        else:
            assert found == {"a"}
            assert time.monotonic() - hung_at >= silence_s
    finally:
        watch.close()
        raylet.close()


def test_the_watch_reports_a_raylet_that_went_away() -> None:
    """A real listening socket stands for a raylet: once it closes, the watch reports the
    node."""
    server = socket.create_server(("127.0.0.1", 0))
    raylets = {"a": server.getsockname(), "b": _closed_port()}
    probed = threading.Event()
    calls: list[int] = []

    def listing() -> dict[str, tuple[str, int]]:
        calls.append(1)
        if len(calls) >= 2:  # the first round probed "a" before the second listing
            probed.set()
        return raylets

    watch = NodeWatch(probe_s=0.01, raylets=listing)
    try:
        watch.watch(["a", ""])
        assert probed.wait(10)
        assert watch.lost() == set()
        server.close()
        found: set[str] = set()
        for _ in range(1000):
            found |= watch.lost()
            if found:
                break
            threading.Event().wait(0.01)
        assert found == {"a"}
    finally:
        watch.close()
        server.close()


def test_node_lost_error_names_the_node_and_pickles() -> None:
    import pickle

    from tune_ckpt.errors import NodeLostError, TuneCkptError

    exc = pickle.loads(pickle.dumps(NodeLostError("ab" * 28)))
    assert isinstance(exc, TuneCkptError)
    assert exc.node_id == "ab" * 28
    assert "ab" * 28 in str(exc)
