"""Ray Tune's own example programs, run on Ray Tune and on tune_ckpt after an import swap.

``python -m tests.ray_examples --help``; the swap's table is in :mod:`.rewrite`.
"""

# The examples the harness runs by default (issue 16's list).
EXAMPLES = (
    "tune_basic_example",
    "custom_func_checkpointing",
    "custom_checkpointing_with_callback",
    "logging_example",
    "async_hyperband_example",
    "hyperband_example",
    "hyperband_function_example",
    "pbt_example",
    "pbt_function",
    "pb2_example",
    "optuna_example",
    "optuna_define_by_run_example",
    "optuna_multiobjective_example",
)
