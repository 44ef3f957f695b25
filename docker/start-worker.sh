#!/usr/bin/env bash
# Start a Ray worker node in the foreground (`ray start --address ... --block`) that joins the
# head at RAY_HEAD_ADDRESS, token authentication on. Run it once per worker. Stopping it (SIGTERM)
# drains the node on Ray >= 2.60 (for up to RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S, default 30 s):
# a tune_ckpt sweep saves the node's trials and moves them; on older Ray the node is lost.
#
# Settings (environment variables; empty or unset means Ray's default unless a default is given):
#   RAY_HEAD_ADDRESS                 the head's GCS address, host:port (required)
#   RAY_NODE_IP                      address this node advertises (default: Ray detects it)
#   RAY_WORKER_NUM_CPUS              CPUs offered for trials (default: all of the machine's)
#   RAY_DASHBOARD_AGENT_LISTEN_PORT  this node's agent HTTP port, used by healthcheck.py (52365)
#   RAY_NODE_MANAGER_PORT, RAY_OBJECT_MANAGER_PORT, RAY_MIN_WORKER_PORT, RAY_MAX_WORKER_PORT,
#   RAY_RUNTIME_ENV_AGENT_PORT, RAY_DASHBOARD_AGENT_GRPC_PORT, RAY_METRICS_EXPORT_PORT
#                                    fixed ports, for firewalls (default: Ray picks)
#   RAY_OBJECT_STORE_MEMORY          object store size in bytes
#   RAY_TEMP_DIR                     Ray's temp/session directory (default /tmp/ray)
#   RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH   the cluster's token (see ray-auth.sh)
# Extra arguments are passed to `ray start`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ray-auth.sh
. "$here/ray-auth.sh"
ray_auth_setup

if [ -z "${RAY_HEAD_ADDRESS:-}" ]; then
    echo "start-worker.sh: set RAY_HEAD_ADDRESS to the head's host:port (e.g. ray-head:6379)" >&2
    exit 2
fi

args=(
    --address "$RAY_HEAD_ADDRESS"
    --block
    --disable-usage-stats
    --dashboard-agent-listen-port "${RAY_DASHBOARD_AGENT_LISTEN_PORT:-52365}"
)
add_opt args --num-cpus RAY_WORKER_NUM_CPUS
add_opt args --node-ip-address RAY_NODE_IP
add_opt args --node-manager-port RAY_NODE_MANAGER_PORT
add_opt args --object-manager-port RAY_OBJECT_MANAGER_PORT
add_opt args --min-worker-port RAY_MIN_WORKER_PORT
add_opt args --max-worker-port RAY_MAX_WORKER_PORT
add_opt args --runtime-env-agent-port RAY_RUNTIME_ENV_AGENT_PORT
add_opt args --dashboard-agent-grpc-port RAY_DASHBOARD_AGENT_GRPC_PORT
add_opt args --metrics-export-port RAY_METRICS_EXPORT_PORT
add_opt args --object-store-memory RAY_OBJECT_STORE_MEMORY
add_opt args --temp-dir RAY_TEMP_DIR

echo "start-worker.sh: ray start ${args[*]} $*" >&2
exec ray start "${args[@]}" "$@"
