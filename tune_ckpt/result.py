"""Names of the fields tune_ckpt puts into (or reads from) every result dict."""

from __future__ import annotations

SHOULD_CHECKPOINT = "should_checkpoint"
"""A result with this key set to True asks for a checkpoint after that step."""

DONE = "done"
DEFAULT_METRIC = "_metric"  # what a function trainable's returned number is reported as
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTAMP = "timestamp"
DATE = "date"
TRIAL_ID = "trial_id"
HOSTNAME = "hostname"
NODE_IP = "node_ip"
PID = "pid"
ITERATIONS_SINCE_RESTORE = "iterations_since_restore"
NUM_FAILURES = "num_failures"
NUM_PREEMPTIONS = "num_preemptions"

AUTO_FILLED = (
    DONE,
    TRAINING_ITERATION,
    TIME_THIS_ITER_S,
    TIME_TOTAL_S,
    TIMESTAMP,
    DATE,
    TRIAL_ID,
    HOSTNAME,
    NODE_IP,
    PID,
    ITERATIONS_SINCE_RESTORE,
)
"""Fields every result carries, whether or not the trainable set them."""

VOLATILE = (TIME_THIS_ITER_S, TIME_TOTAL_S, TIMESTAMP, DATE, HOSTNAME, NODE_IP, PID)
"""Fields that differ between two runs of the same deterministic trainable."""
