#!/usr/bin/env bash
# Start the Ray head node in the foreground (`ray start --head --block`), token authentication on.
#
# Settings (environment variables; empty or unset means Ray's default unless a default is given):
#   RAY_PORT                         GCS port the workers join (default 6379)
#   RAY_NODE_IP                      address this node advertises (default: Ray detects it)
#   RAY_HEAD_NUM_CPUS                CPUs offered for trials (default 0: trials run on workers)
#   RAY_DASHBOARD_HOST               dashboard and Jobs API bind address (default 0.0.0.0)
#   RAY_DASHBOARD_PORT               dashboard and Jobs API port (default 8265)
#   RAY_DASHBOARD_AGENT_LISTEN_PORT  this node's agent HTTP port, used by healthcheck.py (52365)
#   RAY_CLIENT_SERVER_PORT           Ray Client port (default 10001)
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

args=(
    --head
    --block
    --disable-usage-stats
    --port "${RAY_PORT:-6379}"
    --num-cpus "${RAY_HEAD_NUM_CPUS:-0}"
    --dashboard-host "${RAY_DASHBOARD_HOST:-0.0.0.0}"
    --dashboard-port "${RAY_DASHBOARD_PORT:-8265}"
    --dashboard-agent-listen-port "${RAY_DASHBOARD_AGENT_LISTEN_PORT:-52365}"
)
add_opt args --node-ip-address RAY_NODE_IP
add_opt args --ray-client-server-port RAY_CLIENT_SERVER_PORT
add_opt args --node-manager-port RAY_NODE_MANAGER_PORT
add_opt args --object-manager-port RAY_OBJECT_MANAGER_PORT
add_opt args --min-worker-port RAY_MIN_WORKER_PORT
add_opt args --max-worker-port RAY_MAX_WORKER_PORT
add_opt args --runtime-env-agent-port RAY_RUNTIME_ENV_AGENT_PORT
add_opt args --dashboard-agent-grpc-port RAY_DASHBOARD_AGENT_GRPC_PORT
add_opt args --metrics-export-port RAY_METRICS_EXPORT_PORT
add_opt args --object-store-memory RAY_OBJECT_STORE_MEMORY
add_opt args --temp-dir RAY_TEMP_DIR

echo "start-head.sh: ray start ${args[*]} $*" >&2
exec ray start "${args[@]}" "$@"
