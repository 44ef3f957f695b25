"""Run one workload on one framework in this process and print its figures as JSON.

Usage: python -m benchmarks.run_one WORKLOAD FRAMEWORK [ARG]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile

from benchmarks.drain import WORKLOADS as DRAIN
from benchmarks.schedulers import WORKLOADS as SCHEDULERS
from benchmarks.workloads import EXTRA, WORKLOADS, framework


def main() -> None:
    name, which, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    storage = tempfile.mkdtemp(prefix=f"bench_{name}_{which}_")
    try:
        workload = {**WORKLOADS, **EXTRA, **DRAIN, **SCHEDULERS}[name]
        figures = workload(framework(which), storage, *extra)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    print("BENCH " + json.dumps({"workload": name, "framework": which, **figures}), flush=True)


if __name__ == "__main__":
    main()
