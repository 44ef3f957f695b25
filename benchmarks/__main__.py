"""Run the benchmarks: ``python -m benchmarks [--only NAME ...] [--skip-plot]``.

Every workload runs in a fresh process per framework (its own Ray instance), tune_ckpt and
Ray Tune alternating, and prints one JSON line with both figures and their ratio. Ray Tune
runs when it is installed (``pip install -e ".[bench]"``); tune_ckpt never imports it.
Then the checkpoint persist throughput is measured against a plain file copy, and the cost
growth with the number of trials and the checkpoint size is plotted to benchmarks/growth.png.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.workloads import TARGETS, WORKLOADS

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ("tune_ckpt", "ray_tune")


def ray_tune_installed() -> bool:
    return importlib.util.find_spec("ray.tune") is not None


def compile_tune_ckpt() -> None:
    """Write tune_ckpt's .pyc files, as a regular pip install does for Ray Tune. An editable
    install has none, and with PYTHONDONTWRITEBYTECODE set (as on this machine) every new
    worker process would compile the package again; Python still reads the files."""
    import tune_ckpt

    compileall.compile_dir(os.path.dirname(tune_ckpt.__file__), quiet=1)


def run_one(workload: str, framework: str, timeout: float, *extra: str) -> dict[str, Any]:
    """One workload in a child process; ``{"timed_out": seconds}`` past ``timeout``."""
    command = [sys.executable, "-m", "benchmarks.run_one", workload, framework, *extra]
    root = os.path.dirname(HERE)
    try:
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"timed_out": timeout}
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            figures: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return figures
    raise RuntimeError(f"{workload}/{framework} printed no figures:\n{done.stderr[-3000:]}")


def compare(workload: str, timeout: float) -> dict[str, Any]:
    """tune_ckpt, then Ray Tune (if installed), and the ratio of their ``seconds``."""
    line: dict[str, Any] = {"workload": workload, "target_ratio": TARGETS[workload]}
    ours = run_one(workload, "tune_ckpt", timeout)
    line["tune_ckpt"] = ours
    if ray_tune_installed():
        theirs = run_one(workload, "ray_tune", timeout)
        line["ray_tune"] = theirs
        if "timed_out" in theirs:
            # A lower bound on Ray Tune's time gives an upper bound on the ratio.
            line["ratio_below"] = ours["seconds"] / theirs["timed_out"]
            line["target_met"] = line["ratio_below"] <= TARGETS[workload]
        else:
            line["ratio"] = ours["seconds"] / theirs["seconds"]
            line["target_met"] = line["ratio"] <= TARGETS[workload]
    if workload == "scale":
        line["driver_peak_rss_target_mib"] = 1024
        line["driver_peak_rss_met"] = ours["driver_peak_rss_mib"] <= 1024
    return line


def growth(timeout: float) -> dict[str, Any]:
    """Fit time by number of trials and by checkpoint size, for both frameworks."""
    frameworks = FRAMEWORKS if ray_tune_installed() else FRAMEWORKS[:1]
    data: dict[str, Any] = {"trials": {}, "mib": {}}
    for framework in frameworks:
        data["trials"][framework] = {
            n: run_one("growth_trials", framework, timeout, str(n)).get("seconds")
            for n in (4, 16, 64)
        }
        data["mib"][framework] = {
            m: run_one("growth_mib", framework, timeout, str(m)).get("seconds")
            for m in (16, 64, 256)
        }
    return data


def write_results(path: str, lines: list[dict[str, Any]]) -> None:
    """The figures of one run as JSON lines, after a line dating the run."""
    with open(path, "w") as out:
        stamp = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
        out.write(json.dumps({"run": stamp}) + "\n")
        for line in lines:
            out.write(json.dumps(line) + "\n")


def plot(data: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key, label in (
        (axes[0], "trials", "trials (10 iterations, checkpoint every 2)"),
        (axes[1], "mib", "checkpoint size, MiB (2 trials, 2 checkpoints each)"),
    ):
        for framework, points in data[key].items():
            xs = [int(x) for x, y in points.items() if y is not None]
            ys = [y for y in points.values() if y is not None]
            axis.plot(xs, ys, marker="o", label=framework)
        axis.set_xscale("log", base=2)
        axis.set_xlabel(label)
        axis.set_ylabel("fit time, s")
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.suptitle("tune_ckpt and Ray Tune 2.60 on the same 2-core machine, same run")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--skip-plot", action="store_true")
    parser.add_argument(
        "--out",
        default=None,
        help="default: benchmarks/results.jsonl for a full run, "
        "benchmarks/results.partial.jsonl with --only or --skip-plot (not kept in git)",
    )
    args = parser.parse_args()
    if args.out is None:
        # A partial run must not overwrite the figures benchmarks/README.md quotes.
        partial = args.only is not None or args.skip_plot
        args.out = os.path.join(HERE, "results.partial.jsonl" if partial else "results.jsonl")
    compile_tune_ckpt()
    if not ray_tune_installed():
        print("# Ray Tune is not installed: tune_ckpt figures only (pip install -e '.[bench]')")
    lines = []
    for workload in args.only or list(WORKLOADS):
        line = compare(workload, args.timeout)
        print(json.dumps(line), flush=True)
        lines.append(line)
    from benchmarks.persist import measure

    persist = {"workload": "persist_throughput", "target_ratio": 0.5, **measure()}
    persist["target_met"] = persist["staged_ratio"] >= 0.5
    print(json.dumps(persist), flush=True)
    lines.append(persist)
    if not args.skip_plot:
        data = growth(args.timeout)
        plot(data, os.path.join(HERE, "growth.png"))
        lines.append({"workload": "growth", **data})
        print(json.dumps({"workload": "growth", **data}), flush=True)
    write_results(args.out, lines)


if __name__ == "__main__":
    main()
