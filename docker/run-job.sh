#!/usr/bin/env bash
# Run the example sweep (example_sweep.py) as a driver of the cluster at RAY_HEAD_ADDRESS and
# exit with its status: 0 only when the sweep finished with committed checkpoints.
#
# A Ray driver must run on a node of its cluster, so this script first joins the cluster as a
# node with no CPUs for trials (start-worker.sh with RAY_WORKER_NUM_CPUS=0, in the background),
# waits for that node to be active (healthcheck.py), runs the driver, then stops the node it
# started. Set RAY_JOB_JOIN_CLUSTER=0 where this machine already is a node of the cluster.
#
# Settings (environment variables):
#   RAY_HEAD_ADDRESS        the head's GCS address host:port (required)
#   RAY_JOB_JOIN_CLUSTER    1 (default): join as a node first; 0: run the driver as it is
#   RAY_JOB_NODE_TIMEOUT    seconds to wait for this node to join (default 120)
#   EXAMPLE_SWEEP           the driver script (default: example_sweep.py next to this script)
#   TUNE_CKPT_STORAGE_PATH, TUNE_CKPT_EXPERIMENT, EXAMPLE_*   passed on to example_sweep.py
#   RAY_TEMP_DIR, RAY_NODE_IP, RAY_DASHBOARD_AGENT_LISTEN_PORT, ...   for the node (see
#                           start-worker.sh)
#   RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH   the cluster's token (see ray-auth.sh)
# Extra arguments are passed to example_sweep.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ray-auth.sh
. "$here/ray-auth.sh"
ray_auth_setup

if [ -z "${RAY_HEAD_ADDRESS:-}" ]; then
    echo "run-job.sh: set RAY_HEAD_ADDRESS to the head's host:port (e.g. ray-head:6379)" >&2
    exit 2
fi
python="${PYTHON:-python3}"
sweep="${EXAMPLE_SWEEP:-$here/example_sweep.py}"

node_pid=""
stop_node() {
    if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
        echo "run-job.sh: stopping the job's node (pid $node_pid)" >&2
        kill -TERM "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
}
trap stop_node EXIT
trap 'exit 143' TERM INT

if [ "${RAY_JOB_JOIN_CLUSTER:-1}" = "1" ]; then
    RAY_WORKER_NUM_CPUS=0 "$here/start-worker.sh" &
    node_pid=$!
    deadline=$((SECONDS + ${RAY_JOB_NODE_TIMEOUT:-120}))
    until "$python" "$here/healthcheck.py" >/dev/null; do
        if ! kill -0 "$node_pid" 2>/dev/null; then
            echo "run-job.sh: the job's node exited before joining the cluster" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "run-job.sh: the job's node did not join $RAY_HEAD_ADDRESS in time:" >&2
            "$python" "$here/healthcheck.py" >&2 || true
            exit 1
        fi
        sleep 1
    done
    echo "run-job.sh: joined the cluster at $RAY_HEAD_ADDRESS" >&2
fi

# The driver runs in the background so that a SIGTERM (docker stop, kubectl delete) reaches it
# at once; the experiment can then be resumed from its journal (same TUNE_CKPT_EXPERIMENT).
"$python" -u "$sweep" --address "$RAY_HEAD_ADDRESS" "$@" &
driver_pid=$!
trap 'kill -TERM "$driver_pid" 2>/dev/null || true' TERM INT
status=0
wait "$driver_pid" || status=$?
while kill -0 "$driver_pid" 2>/dev/null; do  # `wait` was interrupted by a signal
    status=0
    wait "$driver_pid" || status=$?
done
echo "run-job.sh: the sweep exited with status $status" >&2
exit "$status"
