"""Ray's node drains: the one module that calls Ray's private drain APIs.

A drain marks a node as going away at a deadline: Ray schedules nothing new there, the
node exits by itself once idle, and whoever drained it kills it at the deadline (Ray
enforces none). KubeRay and ``ray start --block`` drain a node on SIGTERM, the
autoscaler on preemption, and ``tune_ckpt.spot`` on a cloud's spot notice.

The calls used are private (``ray._raylet.GcsClient.drain_node``,
``ray._private.state.state.get_draining_nodes``); they have these shapes from Ray 2.49 (the
floor) to 2.60, except that 2.49's ``drain_node`` takes no timeout and lists a drain about
0.1 s after it (2.60: at once). ``tests/fault/test_drains.py`` drains a real node (run on
2.49.0 and 2.60.0), so a Ray upgrade that changes them fails there and is fixed here.
"""

from __future__ import annotations

import re
from typing import Any

import ray

from tune_ckpt.errors import DrainError

# Ray's DrainNodeReason for a node being taken away (non-rejectable, unlike idle termination).
PREEMPTION_REASON = "DRAIN_NODE_REASON_PREEMPTION"
# How long one call to the GCS may take before it is an error.
DEFAULT_TIMEOUT_S = 5.0

_NODE_ID = re.compile(r"[0-9a-f]{56}")  # a NodeID: 28 bytes as lowercase hex
_clients: dict[str, Any] = {}  # GcsClient per GCS address: each one holds a connection


def _check_node_id(node_id: str) -> None:
    # The GCS accepts a malformed id as the nil node and silently drains nothing.
    if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id):
        raise DrainError(
            f"node_id={node_id!r} is not a Ray node id: expected 56 lowercase hex characters"
        )


def _address(gcs_address: str | None) -> str:
    if gcs_address:
        return gcs_address
    if not ray.is_initialized():
        raise DrainError("Ray is not initialized: call ray.init() or pass gcs_address")
    return str(ray.get_runtime_context().gcs_address)


def _client(gcs_address: str | None) -> Any:
    address = _address(gcs_address)
    client = _clients.get(address)
    if client is None:
        try:
            client = ray._raylet.GcsClient(address=address)  # type: ignore[attr-defined]  # compiled, no stubs
        except Exception as exc:
            raise DrainError(f"cannot connect to Ray's GCS at {address}: {exc}") from exc
        _clients[address] = client
    return client


def cluster_address(address: str | None) -> str:
    """The GCS address (host:port) of ``address``, or of the cluster this host runs when it
    is None or ``"auto"`` (``RAY_ADDRESS``, then the last ``ray start``), without
    connecting a Ray driver."""
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        return str(canonicalize_bootstrap_address_or_die(address or "auto"))
    except (ConnectionError, ValueError) as exc:
        raise DrainError(f"cannot find the Ray cluster (address {address!r}): {exc}") from exc


def alive_nodes(
    gcs_address: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, str]:
    """The alive nodes: node id (hex) -> the node's IP address."""
    return {node: ip for node, (ip, _) in node_managers(gcs_address, timeout_s).items()}


def node_managers(
    gcs_address: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, tuple[str, int]]:
    """The alive nodes' raylets: node id (hex) -> (IP address, node manager port)."""
    client = _client(gcs_address)
    try:
        from ray.core.generated import gcs_pb2

        infos = client.get_all_node_info(timeout=timeout_s)
        return {
            info.node_id.hex(): (info.node_manager_address, int(info.node_manager_port))
            for info in infos.values()
            if info.state == gcs_pb2.GcsNodeInfo.ALIVE  # type: ignore[attr-defined]  # generated protobuf
        }
    except Exception as exc:
        raise DrainError(f"cannot list the nodes of {_address(gcs_address)}: {exc}") from exc


def local_node_id(gcs_address: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """The id of the one alive node on this host's IP address (for a process that is not
    a Ray worker, such as ``tune-ckpt spot-watch``); an error when none or several are."""
    from ray._private.services import get_node_ip_address

    ip = get_node_ip_address()
    here = sorted(
        node for node, address in alive_nodes(gcs_address, timeout_s).items() if address == ip
    )
    if len(here) != 1:
        found = ", ".join(here) if here else "none"
        raise DrainError(
            f"cannot tell which Ray node this host is: {len(here)} alive nodes on {ip} "
            f"({found}); name one with its node id"
        )
    return here[0]


def drain_node(
    node_id: str,
    deadline: float | None,
    reason: str = "tune_ckpt: node preempted",
    gcs_address: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Drain an alive node as preempted, to be gone at ``deadline`` (epoch seconds; None:
    no deadline given). Draining again replaces the deadline.

    Raises:
        DrainError: a malformed or not alive node id, no GCS, or the request refused.
    """
    _check_node_id(node_id)
    if node_id not in alive_nodes(gcs_address, timeout_s):
        raise DrainError(f"node {node_id} is not an alive node of {_address(gcs_address)}")
    # 0 means "no deadline" to Ray, so a deadline already passed is kept as 1 ms.
    deadline_ms = 0 if deadline is None else max(1, int(deadline * 1000))
    client = _client(gcs_address)
    try:
        from ray.core.generated import autoscaler_pb2

        code = autoscaler_pb2.DrainNodeReason.Value(PREEMPTION_REASON)  # type: ignore[attr-defined]  # generated protobuf
        try:
            accepted, rejection = client.drain_node(
                node_id, code, reason, deadline_ms, timeout=timeout_s
            )
        except TypeError:  # Ray < 2.5x: no timeout argument
            accepted, rejection = client.drain_node(node_id, code, reason, deadline_ms)
    except Exception as exc:
        raise DrainError(f"draining node {node_id} failed: {type(exc).__name__}: {exc}") from exc
    if not accepted:
        raise DrainError(f"Ray refused to drain node {node_id}: {rejection}")


def draining_nodes() -> dict[str, float | None]:
    """The nodes being drained: node id (hex) -> deadline in epoch seconds, None where the
    drain gave none. A drained node leaves this once it is dead. About 0.3 ms a call (one
    GCS round trip; measured on Ray 2.60), cheap enough to poll every second.

    Raises:
        DrainError: Ray is not initialized, or its answer has changed shape.
    """
    if not ray.is_initialized():
        raise DrainError("Ray is not initialized: draining nodes cannot be read")
    try:
        raw = ray._private.state.state.get_draining_nodes()
    except Exception as exc:
        raise DrainError(f"reading the draining nodes failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(raw, dict) or not all(
        isinstance(node, str) and isinstance(ms, int) for node, ms in raw.items()
    ):
        raise DrainError(f"Ray's draining nodes have an unexpected shape: {raw!r}")
    return {node: (ms / 1000 if ms > 0 else None) for node, ms in raw.items()}
