"""The lost-node verdicts, and probes of real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

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
    assert not verdicts.observe("a", Reach.ANSWERED)
    assert verdicts.reached("a")
    assert verdicts.observe("a", Reach.REFUSED)
    assert not verdicts.observe("a", Reach.REFUSED)  # reported once


def test_a_node_never_reached_is_never_lost() -> None:
    """A driver that cannot reach raylets (Ray Client, a firewall) declares nothing."""
    verdicts = NodeVerdicts(silences_to_lose=1)
    for reach in (Reach.REFUSED, Reach.SILENT, Reach.UNLISTED):
        assert not verdicts.observe("a", reach)


def test_silence_must_last_and_an_answer_resets_it() -> None:
    verdicts = NodeVerdicts(silences_to_lose=3)
    verdicts.observe("a", Reach.ANSWERED)
    assert not verdicts.observe("a", Reach.SILENT)
    assert not verdicts.observe("a", Reach.SILENT)
    assert not verdicts.observe("a", Reach.ANSWERED)
    assert not verdicts.observe("a", Reach.SILENT)
    assert not verdicts.observe("a", Reach.SILENT)
    assert verdicts.observe("a", Reach.SILENT)


def test_a_node_the_gcs_no_longer_lists_is_lost() -> None:
    verdicts = NodeVerdicts()
    verdicts.observe("a", Reach.ANSWERED)
    assert verdicts.observe("a", Reach.UNLISTED)


def test_bad_silence_count_is_refused() -> None:
    with pytest.raises(ValueError, match="silences_to_lose=0"):
        NodeVerdicts(silences_to_lose=0)


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
