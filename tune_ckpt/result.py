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
# Goodput (see tune_ckpt.goodput): seconds of steps later redone, of saving checkpoints, of
# waiting to run again after a failure or preemption; and useful step time over all of it.
TIME_LOST_S = "time_lost_s"
TIME_CHECKPOINTING_S = "time_checkpointing_s"
TIME_WAITING_S = "time_waiting_s"
GOODPUT = "goodput"

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

GOODPUT_FIELDS = (TIME_LOST_S, TIME_CHECKPOINTING_S, TIME_WAITING_S, GOODPUT)
"""Fields the driver adds to every result: what faults and checkpoints cost the trial."""

VOLATILE = (
    TIME_THIS_ITER_S,
    TIME_TOTAL_S,
    TIMESTAMP,
    DATE,
    HOSTNAME,
    NODE_IP,
    PID,
    *GOODPUT_FIELDS,
)
"""Fields that differ between two runs of the same deterministic trainable."""
