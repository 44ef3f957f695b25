"""Health check of the Ray node on this machine: exit 0 when it is up and part of the cluster.

Healthy means: a raylet started by start-head.sh or start-worker.sh runs here (in the Ray temp
directory RAY_TEMP_DIR, when set; found in /proc, so Linux only) and the cluster's GCS, asked
with the cluster's token, lists that node as alive (``ray status``; its list is refreshed every
few seconds). The compose file and the Kubernetes manifest use it as
the containers' health check; run-job.sh and the tests use it to wait for a node.

Settings (environment variables):
  RAY_HEAD_ADDRESS   the head's GCS address host:port (default 127.0.0.1:$RAY_PORT, for the head)
  RAY_PORT           the head's GCS port when RAY_HEAD_ADDRESS is unset (default 6379)
  RAY_TEMP_DIR       the node's Ray temp directory, to tell nodes on one machine apart
  RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH, RAY_AUTH_MODE   as for start-head.sh (see ray-auth.sh)
  HEALTHCHECK_TIMEOUT  seconds for the whole check (default 20)

Run: python docker/healthcheck.py   (prints the reason and exits 1 when unhealthy)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SECRET_FILE = "/run/secrets/ray_auth_token"


def local_node_ids(temp_dir: str | None) -> list[str]:
    """Node ids of the raylets running on this machine (under ``temp_dir`` when given)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended, or is not ours to read
            continue
        if not argv or not argv[0].endswith(b"/raylet"):
            continue
        args = [a.decode(errors="replace") for a in argv]
        if temp_dir and not any(temp_dir.rstrip("/") + "/" in a for a in args):
            continue
        for arg in args:
            if arg.startswith("--node_id="):
                found.append(arg.split("=", 1)[1])
    return found


def active_node_ids(address: str, timeout: float) -> tuple[set[str], str]:
    """The node ids ``ray status`` lists as alive, and its output."""
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "token")
    no_token = not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH")
    if no_token and os.path.isfile(SECRET_FILE):
        env["RAY_AUTH_TOKEN_PATH"] = SECRET_FILE
    ray_cli = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    proc = subprocess.run(
        [ray_cli, "status", "--address", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    return (alive_node_ids(output) if proc.returncode == 0 else set()), output


def alive_node_ids(status: str) -> set[str]:
    """The node ids ``ray status`` lists before "Pending:": under "Active:", and "Idle:" where
    the autoscaler v2 lists idle nodes apart. Nodes under "Recent failures:" do not count."""
    if "Pending:" not in status:
        return set()
    nodes = status.split("Node status", 1)[-1].split("Pending:", 1)[0]
    return set(re.findall(r"node_([0-9a-f]{56})", nodes))


def main() -> int:
    port = os.environ.get("RAY_PORT") or "6379"
    address = os.environ.get("RAY_HEAD_ADDRESS") or f"127.0.0.1:{port}"
    timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT", "20"))
    temp_dir = os.environ.get("RAY_TEMP_DIR") or None
    local = local_node_ids(temp_dir)
    if not local:
        print(f"unhealthy: no raylet runs here (temp dir {temp_dir or 'any'})")
        return 1
    try:
        active, output = active_node_ids(address, timeout)
    except subprocess.TimeoutExpired:
        print(f"unhealthy: `ray status --address {address}` did not answer in {timeout:g} s")
        return 1
    mine = [node for node in local if node in active]
    if not mine:
        print(f"unhealthy: node {', '.join(local)} is not active in the cluster at {address}")
        print(output.strip()[-2000:])
        return 1
    print(f"healthy: node {mine[0]} is active in the cluster at {address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
