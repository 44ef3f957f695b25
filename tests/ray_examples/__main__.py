"""Ray Tune 2.60's example programs, on Ray Tune and on tune_ckpt with imports swapped.

Takes the examples from the installed ``ray`` wheel (``ray/tune/examples``; nothing is
copied into this repository), rewrites their imports by the table below and nothing else,
and runs each with ``--smoke-test``, one at a time, first as shipped on Ray Tune, then
rewritten on tune_ckpt, each run in fresh temporary folders (working directory, ``HOME``
with the default storage, ``RAY_TMPDIR``). Then, for the tune_ckpt run: ``tune-ckpt verify``
on the storage it left, the PBT exploits it recorded, and any warning of its output about a
missing, skipped or bad checkpoint or exploit.

Exit status 1 when an example that passes on Ray Tune (or was not run there) fails on
tune_ckpt, or its checks find something; else 0.

Usage, from the repository root (Ray Tune comes with the ``bench`` extra)::

    python -m tests.ray_examples                  # all, both sides
    python -m tests.ray_examples --side tune_ckpt --only pbt_example pbt_function
    python -m tests.ray_examples --show-diff      # the rewrite of each, nothing run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from . import EXAMPLES
from . import rewrite as rewrite_module
from .checks import Checks, check
from .rewrite import RewriteError, rewrite, unified_diff
from .runner import Run, Side, Status, cleanup, examples_dir, run


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.ray_examples",
        description=__doc__ + "\n" + (rewrite_module.__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", nargs="+", metavar="EXAMPLE", help="these examples only")
    parser.add_argument(
        "--side", choices=["both", "ray_tune", "tune_ckpt"], default="both", help="default both"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--show-diff", action="store_true", help="print the rewrites; run none")
    parser.add_argument("--out", type=Path, help="folder for the runs' logs (default: a temp one)")
    args = parser.parse_args(argv)
    for name in args.only or ():
        if not (examples_dir() / f"{name}.py").is_file():
            parser.error(f"--only {name}: no such file in {examples_dir()}")
    return args


def _show_diffs(names: list[str]) -> int:
    for name in names:
        before = (examples_dir() / f"{name}.py").read_bytes()
        try:
            print(unified_diff(name, before, rewrite(before).source))
        except RewriteError as error:
            print(f"{name}: not rewritten: {error}\n")
    return 0


def _cell(result: Run | None) -> str:
    if result is None:
        return "-"
    return f"{result.status.value} {result.seconds:5.1f}s"


def _checks_cell(checks: Checks | None) -> str:
    if checks is None:
        return "-"
    parts = []
    if checks.verify_exit is not None:
        parts.append(f"verify={checks.verify_exit} ({checks.verified} ok, {checks.bad} bad)")
    if checks.exploits is not None:
        parts.append(f"exploits={checks.exploits}")
    if checks.warnings:
        parts.append(f"{len(checks.warnings)} checkpoint warning(s)")
    return ", ".join(parts) or "no checkpoints"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = list(args.only or EXAMPLES)
    if args.show_diff:
        return _show_diffs(names)
    out = args.out or Path(tempfile.mkdtemp(prefix="ray-examples-logs-"))
    out.mkdir(parents=True, exist_ok=True)
    sides = [Side(args.side)] if args.side != "both" else [Side.RAY_TUNE, Side.TUNE_CKPT]
    rows = []
    started = time.monotonic()
    seconds = {side: 0.0 for side in sides}
    for name in names:
        row: dict[Side, Run] = {}
        checks = None
        for side in sides:
            if not args.json:
                print(f"running {name} on {side.value} ...", file=sys.stderr, flush=True)
            result = run(name, side, out, args.timeout)
            row[side] = result
            seconds[side] += result.seconds
            if side is Side.TUNE_CKPT:
                checks = check(result.home, result.log)
            cleanup(result)
        rows.append((name, row, checks))
    total = time.monotonic() - started

    failing = []
    for name, row, checks in rows:
        ray, ckpt = row.get(Side.RAY_TUNE), row.get(Side.TUNE_CKPT)
        regressed = ckpt is not None and ckpt.status is not Status.PASS
        if ray is not None and ray.status is not Status.PASS:
            regressed = False  # fails on Ray Tune too: not a difference
        if regressed or (checks is not None and not checks.ok):
            failing.append(name)

    if args.json:
        document = {
            "examples_dir": str(examples_dir()),
            "logs": str(out),
            "seconds": {
                "total": round(total, 1),
                **{s.value: round(t, 1) for s, t in seconds.items()},
            },
            "failing": failing,
            "examples": [
                {
                    "example": name,
                    **{
                        side.value: {
                            "status": result.status.value,
                            "seconds": round(result.seconds, 1),
                            "returncode": result.returncode,
                            "log": str(result.log),
                            "tail": result.tail,
                        }
                        for side, result in row.items()
                    },
                    "checks": None if checks is None else checks.to_json(),
                }
                for name, row, checks in rows
            ],
        }
        print(json.dumps(document, indent=2))
    else:
        width = max(len(name) for name in names)
        print(f"{'example':<{width}}  {'Ray Tune':<14}  {'tune_ckpt':<14}  checks")
        for name, row, checks in rows:
            print(
                f"{name:<{width}}  {_cell(row.get(Side.RAY_TUNE)):<14}  "
                f"{_cell(row.get(Side.TUNE_CKPT)):<14}  {_checks_cell(checks)}"
            )
            for line in checks.warnings if checks else ():
                print(f"    {line}")
        times = ", ".join(f"{s.value} {t:.0f} s" for s, t in seconds.items())
        print(f"\ntotal {total:.0f} s ({times}); logs in {out}")
        if failing:
            print(f"failing on tune_ckpt: {', '.join(failing)}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
