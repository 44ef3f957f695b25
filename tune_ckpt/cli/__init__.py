"""``tune-ckpt``: inspect, verify, clean up and resume tune_ckpt experiments from a shell.

Subcommands ``ls``, ``show``, ``verify``, ``gc`` and ``resume`` work on local paths,
``file://`` and ``s3://`` URIs. Output is a table (rich) or, with ``--json``, one JSON
document; errors are one line on stderr. Exit status: 0 success, 1 bad checkpoints
(``verify``) or errored trials (``resume``), 2 a usage, experiment or storage error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import ray

from tune_ckpt import journal
from tune_ckpt.cli import gather, gather_checks, gather_gc, gather_trials, spot_watch
from tune_ckpt.cli.render import render
from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import TrialError, TuneCkptError
from tune_ckpt.tuner import Tuner

PROG = "tune-ckpt"
# How long resume waits for a TCP answer from --address before giving up.
_CONNECT_TIMEOUT_S = 5.0

_JSON_HELP = {
    "ls": """\
--json, on an experiment:
  {"kind": "experiment", "path", "name", "trainable", "created" (epoch seconds),
   "metric", "mode" (TuneConfig's, or null), "state" ("running": a driver holds a live
   lease; "interrupted": its driver died (stale lease) or left trials unfinished;
   "finished"), "lease" (null, or {"lease_id", "host", "pid", "heartbeat_age_s",
   "timeout_s", "stale"}), "statuses": {status: count} (a RUNNING trial of an experiment
   that is not running shows as INTERRUPTED),
   "trials": [{"trial_id", "trial_dir", "status", "iterations" (training_iteration of the
     last result), "best_metric" (best value of the metric over the trial's results, null
     without a metric), "num_checkpoints" (committed on storage), "checkpoint_bytes"}]}
--json, on a folder of experiments:
  {"kind": "experiments", "path", "experiments": [{"name", "path", "trainable", "created",
   "num_trials", "statuses": {status: count}, "state", "lease" (as above), "error" (null,
   or why its journal is unreadable)}]}""",
    "show": """\
--json:
  {"kind": "trial", "experiment", "path", "trial_id", "trial_dir", "status", "config",
   "num_failures", "num_preemptions", "error" (the exception line, or null), "traceback",
   "metric", "mode", "last_result",
   "checkpoints": [{"name", "path", "iteration", "metrics", "metrics_source" ("journal":
     reported with the checkpoint; "results": the result of its iteration; or null), "size"
     (bytes), "verified" (bool), "status" ("ok", "bad" or "unreadable"), "problems" ([one
     line per problem])}]}
A checkpoint the journal records as committed whose manifest is gone is listed as bad
("manifest missing").""",
    "verify": """\
--json:
  {"kind": "verify", "path", "verified" (count), "bad" (count), "unreadable" (count),
   "checkpoints": [{"experiment", "trial_id", "path", "iteration", "ok", "status",
     "problems"}]}
"status": "ok"; "bad" (its bytes were read and do not match its manifest, its manifest
does not parse, or the journal records it as committed and its manifest is missing);
"unreadable" (storage failed while reading it: not known to be bad).
Exit status 1 when any checkpoint is bad; else 2 when any is unreadable.""",
    "gc": """\
--json:
  {"kind": "gc", "path", "dry_run", "removed": [{"experiment", "trial_id", "path"}],
   "published": [{"experiment", "trial_id", "from", "to"}],
   "kept": [{"experiment", "trial_id", "path"}],
   "markers": [{"experiment", "path", "lease_id", "host", "pid", "heartbeat_age_s",
     "timeout_s", "stale"}],
   "running": [same as "markers"]}
"published": a sealed temporary folder whose rename into place was interrupted, renamed
now instead of removed. "kept": checkpoint folders without a manifest that the journal
records as committed, kept unless --force. "markers": driver leases removed: stale ones
(their driver died: no heartbeat within their timeout), live ones only with --force.
"running": live leases of experiments a dry run looked at (gc without --dry-run refuses
them unless --force).""",
    "resume": """\
--json:
  {"kind": "resume", "path", "num_trials", "statuses": {status: count},
   "errored": [trial ids], "trials": [{"trial_id", "status", "iterations"}]}
The sweep's own progress goes to stderr with --json, so stdout holds only the document.
Exit status 1 when a trial ended in ERROR.""",
}


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``tune-ckpt: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{message} (see {self.prog} --help)")
        raise SystemExit(2)


# -- commands ------------------------------------------------------------------------------


def _emit(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()
    else:
        render(doc)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: a number of seconds >= 0")
    return value


def _retry(args: argparse.Namespace) -> StorageRetry:
    return StorageRetry(max_elapsed_s=args.storage_retry_s)


def _ls(args: argparse.Namespace) -> int:
    _emit(gather_trials.ls(args.path, _retry(args)), args.json)
    return 0


def _show(args: argparse.Namespace) -> int:
    _emit(gather_trials.show(args.path, _retry(args)), args.json)
    return 0


def _verify(args: argparse.Namespace) -> int:
    doc = gather_checks.verify(args.path, _retry(args))
    _emit(doc, args.json)
    if doc["bad"]:
        return 1
    if doc["unreadable"]:
        _print_error(
            f"{doc['unreadable']} checkpoint(s) could not be read (storage failed); "
            "run verify again once storage is reachable"
        )
        return 2
    return 0


def _gc(args: argparse.Namespace) -> int:
    doc = gather_gc.gc(args.path, dry_run=args.dry_run, force=args.force, retry=_retry(args))
    _emit(doc, args.json)
    return 0


def load_trainable(spec: str) -> Any:
    """The object ``module:name`` names, imported with the current directory on sys.path
    (as ``python -m`` has it), so a trainable defined next to the user's script is found."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise gather.CliError(
            f"--trainable {spec!r} is invalid: give module:name, e.g. my_sweep:train_fn"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise gather.CliError(
            f"--trainable {spec!r}: cannot import {module_name!r}: {exc}"
        ) from exc
    except Exception as exc:  # the module itself raised while importing
        raise gather.CliError(
            f"--trainable {spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise gather.CliError(
                f"--trainable {spec!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from exc
    return target


def _check_reachable(address: str) -> None:
    """Fail in seconds on a ``host:port`` or ``ray://host:port`` nobody listens on, where
    ray.init keeps retrying for minutes. Other forms (``auto``, ``local``) are Ray's to
    resolve."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise gather.CliError(f"cannot reach Ray at --address {address}: {exc}") from exc


def _resume(args: argparse.Namespace) -> int:
    experiment = gather.resolve(args.path, _retry(args))
    if not journal.exists(experiment):
        raise gather.CliError(f"{experiment.uri()} holds no tune_ckpt experiment to resume")
    trainable = load_trainable(args.trainable)
    # Restore before Ray starts: a wrong trainable or a bad journal fails without it.
    tuner = Tuner.restore(
        args.path,
        trainable,
        resume_errored=args.resume_errored,
        restart_errored=args.restart_errored,
    )
    if args.address:
        _check_reachable(args.address)
        try:
            ray.init(address=args.address)
        except (ConnectionError, TimeoutError, RuntimeError) as exc:  # what ray.init raises
            raise gather.CliError(f"cannot reach Ray at --address {args.address}: {exc}") from exc
    # With --json, stdout carries only the document: the sweep's progress goes to stderr.
    progress_to = sys.stderr if args.json else sys.stdout
    try:
        with contextlib.redirect_stdout(progress_to):
            tuner.fit()
    finally:
        if ray.is_initialized():
            ray.shutdown()
    doc = gather_trials.resume_summary(experiment)
    _emit(doc, args.json)
    return 1 if doc["errored"] else 0


# -- the parser ----------------------------------------------------------------------------


def _command(
    commands: Any,
    name: str,
    summary: str,
    run: Callable[[argparse.Namespace], int],
    path_help: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=_JSON_HELP[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help=path_help)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--storage-retry-s",
        type=_seconds,
        default=gather.CLI_RETRY.max_elapsed_s,
        metavar="SECONDS",
        help="how long transient storage errors are retried (default %(default)g; 0: once)",
    )
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``tune-ckpt`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Inspect, verify, clean up and resume tune_ckpt experiments. PATH is a local "
            "folder, a file:// or an s3:// URI (S3 honours AWS_ENDPOINT_URL and the usual "
            "AWS_* variables)."
        ),
        epilog="\n\n".join(f"{PROG} {name}\n{text}" for name, text in _JSON_HELP.items())
        + "\n\nExit status: 0 success; 1 bad checkpoints (verify) or errored trials (resume);"
        " 2 usage, experiment or storage errors (verify: unreadable checkpoints).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _command(
        commands,
        "ls",
        "list the trials of an experiment, or the experiments in a folder",
        _ls,
        "an experiment folder, or a folder of experiments",
    )
    _command(
        commands,
        "show",
        "show one trial: config, status, last result and its checkpoints on storage",
        _show,
        "EXPERIMENT/TRIAL: the trial's folder, or the experiment folder and the trial id",
    )
    _command(
        commands,
        "verify",
        "check every committed checkpoint against its manifest",
        _verify,
        "an experiment folder, or a folder of experiments",
    )
    gc = _command(
        commands,
        "gc",
        "remove the leftovers of interrupted checkpoint writes from every trial folder",
        _gc,
        "an experiment folder, or a folder of experiments",
    )
    gc.add_argument(
        "--dry-run", action="store_true", help="list what would be removed; change nothing"
    )
    gc.add_argument(
        "--force",
        action="store_true",
        help="sweep even when a live driver lease is present, remove it, and remove "
        "checkpoint folders whose manifest is missing even where the journal records them",
    )
    resume = _command(
        commands,
        "resume",
        "continue an experiment: restore it and run its unfinished trials",
        _resume,
        "the experiment folder",
    )
    resume.add_argument(
        "--trainable",
        required=True,
        metavar="MODULE:NAME",
        help="the trainable the experiment was run with, e.g. my_sweep:train_fn",
    )
    errored = resume.add_mutually_exclusive_group()
    errored.add_argument(
        "--resume-errored",
        action="store_true",
        help="resume errored trials from their latest checkpoint",
    )
    errored.add_argument(
        "--restart-errored", action="store_true", help="restart errored trials from scratch"
    )
    resume.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster to join (ray.init(address=ADDR)); default: fit()'s ray.init()",
    )
    spot_watch.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tune-ckpt`` with ``argv`` (default: the command line); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    # The error a command ends with is its one line; the storage layer's own "giving up"
    # ERROR would say the same thing twice.
    logging.getLogger("tune_ckpt.storage.retry").setLevel(logging.CRITICAL)
    try:
        return int(args.run(args))
    except TrialError as exc:  # FailureConfig(fail_fast="raise") re-raises from fit()
        _print_error(f"a trial failed: {gather.exception_line(str(exc)) or exc}")
        return 1
    except TuneCkptError as exc:  # no experiment, unknown trial, storage errors, ...
        _print_error(str(exc))
        return 2
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``tune-ckpt ls ... | head``): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
