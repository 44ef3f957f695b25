"""Benchmarks of tune_ckpt against Ray Tune, run side by side in one process tree.

``python -m benchmarks`` runs every workload; see benchmarks/README.md.
"""
