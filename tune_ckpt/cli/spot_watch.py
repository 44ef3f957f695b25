"""``tune-ckpt spot-watch``: the spot-notice watcher in the foreground on one node.

For clusters where the sweep does not own the nodes (other jobs share them), run this on
each spot node beside ``ray start``: on the cloud's interruption notice it drains the node
through Ray, which every job on the cluster (and a tune_ckpt sweep's driver) then sees.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tune_ckpt import spot
from tune_ckpt.cli.gather import CliError
from tune_ckpt.config import METADATA_URL, SpotConfig
from tune_ckpt.driver import drains

SUMMARY = "drain this Ray node when the cloud announces a spot interruption"


def _run(args: argparse.Namespace) -> int:
    try:
        config = SpotConfig(
            provider=args.provider,
            poll_s=args.poll_s,
            margin_s=args.margin_s,
            metadata_url=args.metadata_url,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    address = drains.cluster_address(args.address)
    node_id = args.node_id or drains.local_node_id(address)
    if node_id not in drains.alive_nodes(address):
        raise CliError(f"--node-id {node_id} is not an alive node of the cluster at {address}")
    print(
        f"watching node {node_id} of {address} for {config.provider} spot notices "
        f"at {config.metadata_url} every {config.poll_s:g}s",
        flush=True,
    )
    notice = spot.watch(config, node_id, address)
    assert notice is not None  # watch returns None only when stopped, and nothing stops it
    print(
        f"spot notice: {notice.action} in {notice.time - time.time():.0f}s; drained node "
        f"{node_id} with a deadline {config.margin_s:g}s before it",
        flush=True,
    )
    return 0


def add_command(commands: Any) -> argparse.ArgumentParser:
    """Register ``spot-watch`` with the ``tune-ckpt`` subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "spot-watch",
        help=SUMMARY,
        description=SUMMARY + ". Polls the metadata service until a notice, drains the node "
        "with a deadline of the notice's time minus --margin-s, and exits 0.",
    )
    parser.add_argument("--provider", choices=["aws", "gcp", "auto"], default="auto")
    parser.add_argument(
        "--poll-s", type=float, default=2.0, metavar="SECONDS", help="default %(default)g"
    )
    parser.add_argument(
        "--margin-s",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="the drain's deadline is this long before the notice's time (default %(default)g)",
    )
    parser.add_argument(
        "--metadata-url",
        default=METADATA_URL,
        metavar="URL",
        help="the instance metadata service (default %(default)s)",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster's GCS address host:port (default: RAY_ADDRESS, then the "
        "cluster this host started)",
    )
    parser.add_argument(
        "--node-id",
        metavar="HEX",
        help="the node to drain (default: the one Ray node on this host's IP address)",
    )
    parser.set_defaults(run=_run)
    return parser
