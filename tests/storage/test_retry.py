"""The retry policy at work: which backend errors are transient, how retries are paced and
logged, and when they stop. No real waiting: the clock and the sleep are injected."""

from __future__ import annotations

import errno
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faultfs import KINDS, make_error

from tune_ckpt.config import RunConfig, StorageRetry, TuneConfig
from tune_ckpt.errors import (
    StorageError,
    StorageFullError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
)
from tune_ckpt.experiment_settings import experiment_settings
from tune_ckpt.journal import Journal
from tune_ckpt.storage.retry import attempt_once, classify, retrying
from tune_ckpt.tuner import Tuner


def aws(code: str, operation: str = "PutObject", detail: str = "x") -> OSError:
    """An OSError as pyarrow's S3 filesystem words it (checked against real answers)."""
    return OSError(
        f"When uploading part for key 'k' in bucket 'b': AWS Error {code} during {operation} "
        f"operation: {detail}"
    )


TRANSIENT = StorageUnavailableError
CLASSIFICATION = [
    # S3 error codes, as pyarrow names them
    (aws("SLOW_DOWN"), TRANSIENT),
    (aws("THROTTLING"), TRANSIENT),
    (aws("SERVICE_UNAVAILABLE"), TRANSIENT),
    (aws("INTERNAL_FAILURE"), TRANSIENT),
    (aws("REQUEST_TIMEOUT"), TRANSIENT),
    (aws("NETWORK_CONNECTION", detail="curlCode: 7, Could not connect to server"), TRANSIENT),
    (aws("UNKNOWN (HTTP status 500)"), TRANSIENT),
    (aws("UNKNOWN (HTTP status 502)"), TRANSIENT),
    (aws("UNKNOWN (HTTP status 503)", "HeadObject", "No response body."), TRANSIENT),
    (aws("UNKNOWN (HTTP status 504)"), TRANSIENT),
    (aws("ACCESS_DENIED"), StoragePermissionError),
    (aws("INVALID_ACCESS_KEY_ID"), StoragePermissionError),
    (aws("UNKNOWN (HTTP status 403)", "HeadObject", "No response body."), StoragePermissionError),
    (aws("NO_SUCH_BUCKET"), StorageNotFoundError),
    (aws("UNKNOWN (HTTP status 404)"), StorageNotFoundError),
    (
        aws("UNKNOWN (HTTP status 400)", detail="Unable to parse ExceptionName: QuotaExceeded M"),
        StorageFullError,
    ),
    (
        aws("UNKNOWN (HTTP status 503)", detail="Unable to parse ExceptionName: SlowDown M"),
        TRANSIENT,
    ),
    (aws("UNKNOWN (HTTP status 507)"), StorageFullError),
    (aws("UNKNOWN (HTTP status 400)"), StorageError),
    (aws("[code 152]"), StorageError),
    # errno, from local disks and NFS
    (OSError(errno.EAGAIN, "Resource temporarily unavailable"), TRANSIENT),
    (OSError(errno.EINTR, "Interrupted system call"), TRANSIENT),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), TRANSIENT),
    (OSError(errno.ESTALE, "Stale file handle"), TRANSIENT),
    (OSError(errno.EHOSTUNREACH, "No route to host"), TRANSIENT),
    (OSError(errno.EACCES, "Permission denied"), StoragePermissionError),
    (OSError(errno.EPERM, "Operation not permitted"), StoragePermissionError),
    (OSError(errno.EROFS, "Read-only file system"), StoragePermissionError),
    (OSError(errno.ENOENT, "No such file or directory"), StorageNotFoundError),
    (OSError(errno.ENOSPC, "No space left on device"), StorageFullError),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), StorageFullError),
    (OSError(errno.EIO, "Input/output error"), StorageError),
    # Python types without an errno
    (ConnectionResetError("reset by peer"), TRANSIENT),
    (TimeoutError("timed out"), TRANSIENT),
    (FileNotFoundError("gone"), StorageNotFoundError),
    (PermissionError("denied"), StoragePermissionError),
    # arrow's one uncoded S3 message
    (OSError("Bucket 'b' not found. To create buckets, enable ..."), StorageNotFoundError),
]


@pytest.mark.parametrize(("exc", "expected"), CLASSIFICATION)
def test_classification_by_type_errno_and_code(exc: OSError, expected: type) -> None:
    """Each backend error maps to its kind; only StorageUnavailableError is retried."""
    kind = classify(exc)
    assert kind is expected
    assert kind.transient is (expected is TRANSIENT)


@pytest.mark.parametrize(
    "message",
    [
        "error talking to 127.0.0.1:40351: 403 Forbidden",  # a port is not an HTTP status
        "upload of 'SLOW_DOWN during PutObject operation' failed",  # a key is not a code
        "Connection refused; timed out; 503 Service Unavailable",  # words are not codes
        "When reading key 'Bucket 'x' not found.': something",
    ],
)
def test_free_text_never_decides_the_kind(message: str) -> None:
    """Words, ports and keys inside a message that has no code are not taken for one."""
    assert classify(OSError(message)) is StorageError


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("s3", [True, False])
def test_fault_kinds_classify_as_their_real_counterparts(kind: str, s3: bool) -> None:
    """Every fault the test filesystem injects is classified as the real one would be."""
    expected = {
        "permission": StoragePermissionError,
        "enospc": StorageFullError,
    }.get(kind, TRANSIENT)
    assert classify(make_error(kind, "open_output_stream", "b/k", s3)) is expected


class FakeTime:
    """A clock that advances only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(
    times: int, exc: BaseException, value: str = "done"
) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return value

    return calls, fn


def test_transient_errors_are_retried_with_growing_jittered_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three SlowDowns then success: three waits, each within its doubling bound; one INFO
    line per retry naming the operation, the path and the attempt."""
    policy = StorageRetry(max_elapsed_s=60, initial_s=0.5, max_s=1.5)
    fake = FakeTime()
    calls, fn = failing(3, aws("SLOW_DOWN"))
    draws = iter([0.9, 0.5, 0.99])
    with caplog.at_level(logging.INFO, logger="tune_ckpt.storage.retry"):
        result = retrying(
            policy, "write", "s3://b/x", fn, sleep=fake.sleep, clock=fake.clock,
            uniform=lambda: next(draws),
        )  # fmt: skip
    assert result == "done" and len(calls) == 4
    assert fake.sleeps == pytest.approx([0.45, 0.5, 1.485])
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 3
    for attempt, record in enumerate(infos, 1):
        message = record.getMessage()
        assert "write" in message and "s3://b/x" in message
        assert f"(attempt {attempt})" in message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_giving_up_after_the_elapsed_budget(caplog: pytest.LogCaptureFixture) -> None:
    """An outage longer than max_elapsed_s: the waits never pass the budget, the last one is
    cut to what remains, and one ERROR names operation, path, attempts and cause."""
    policy = StorageRetry(max_elapsed_s=10, initial_s=1, max_s=4)
    fake = FakeTime()
    calls, fn = failing(10**6, ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    caplog.set_level(logging.INFO, logger="tune_ckpt.storage.retry")
    with pytest.raises(StorageUnavailableError) as info:
        retrying(
            policy, "list", "/data/exp", fn, sleep=fake.sleep, clock=fake.clock,
            uniform=lambda: 0.999,
        )  # fmt: skip
    assert sum(fake.sleeps) == pytest.approx(10)
    assert all(wait <= 4 for wait in fake.sleeps)
    assert len(calls) == len(fake.sleeps) + 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "list" in message and "/data/exp" in message
    assert f"after {len(calls)} attempts" in message and "refused" in message
    assert info.value.path == "/data/exp"
    assert f"gave up after {len(calls)} attempts" in info.value.cause
    assert isinstance(info.value.__cause__, StorageUnavailableError)


@pytest.mark.parametrize(
    "exc",
    [
        aws("ACCESS_DENIED"),
        aws("NO_SUCH_BUCKET"),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError("unknown"),
    ],
)
def test_permanent_errors_raise_at_once(exc: OSError, caplog: pytest.LogCaptureFixture) -> None:
    """Permission, missing bucket, a full disk or an unknown error: one attempt, no wait."""
    fake = FakeTime()
    calls, fn = failing(1, exc)
    with caplog.at_level(logging.INFO), pytest.raises(StorageError) as info:
        retrying(StorageRetry(), "write", "p", fn, sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1 and fake.sleeps == []
    assert type(info.value) is classify(exc)
    assert info.value.__cause__ is exc
    assert not caplog.records


def test_zero_budget_makes_one_attempt() -> None:
    """max_elapsed_s=0 tries once and gives up on a transient error without sleeping."""
    fake = FakeTime()
    calls, fn = failing(1, TimeoutError("slow"))
    with pytest.raises(StorageUnavailableError):
        retrying(StorageRetry(max_elapsed_s=0), "read", "p", fn, sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1 and fake.sleeps == []


def test_attempt_once_makes_one_attempt_and_restores_retries() -> None:
    """Cleanup after storage already failed past its budget (the driver's shutdown) tries
    each call once, raising the translated error; after the block, calls retry again."""
    policy = StorageRetry(max_elapsed_s=5, initial_s=1, max_s=1)
    fake = FakeTime()
    calls, fn = failing(1, TimeoutError("slow"))
    with pytest.raises(StorageUnavailableError), attempt_once():
        retrying(policy, "write", "p", fn, sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1 and fake.sleeps == []
    calls, fn = failing(1, TimeoutError("slow"))
    retrying(policy, "write", "p", fn, sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 2 and len(fake.sleeps) == 1


def test_nested_calls_do_not_multiply_the_budget() -> None:
    """Inside a retried operation, an inner retried call runs once; the outer one retries
    the whole, so an outage costs one budget, not one per level."""
    policy = StorageRetry(max_elapsed_s=5, initial_s=1, max_s=1)
    fake = FakeTime()
    inner_calls: list[int] = []

    def inner() -> None:
        inner_calls.append(1)
        raise aws("SLOW_DOWN")

    def outer() -> None:
        retrying(policy, "read", "p/inner", inner, sleep=fake.sleep, clock=fake.clock)

    with pytest.raises(StorageUnavailableError):
        retrying(
            policy, "append", "p", outer, sleep=fake.sleep, clock=fake.clock, uniform=lambda: 1.0
        )
    assert len(inner_calls) == len(fake.sleeps) + 1 == 6
    assert sum(fake.sleeps) == pytest.approx(5)


def test_non_storage_exceptions_pass_through() -> None:
    """A bug in the operation (not an OSError) is neither translated nor retried."""
    fake = FakeTime()
    calls, fn = failing(1, KeyError("bug"))
    with pytest.raises(KeyError):
        retrying(StorageRetry(), "read", "p", fn, sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1


# -- the policy reaches every location ----------------------------------------------------------


def _trainable(config: dict[str, Any]) -> None:
    """A function trainable; never run here."""


def test_run_config_policy_reaches_locations_and_survives_restore(tmp_path: Path) -> None:
    """RunConfig(storage_retry=...) is the experiment location's policy (and its children's,
    and survives pickling to workers); the journal keeps it, so Tuner.restore uses it unless
    given a RunConfig of its own."""
    policy = StorageRetry(max_elapsed_s=7, initial_s=0.5, max_s=2)
    run_config = RunConfig(storage_path=str(tmp_path), name="exp", storage_retry=policy)
    tuner = Tuner(_trainable, run_config=run_config)
    experiment, trials = tuner._new_experiment()
    assert experiment.retry == policy
    assert experiment.child("trial").retry == policy
    assert pickle.loads(pickle.dumps(experiment)).retry == policy
    experiment.makedirs()
    journal = Journal(experiment)
    settings = experiment_settings(run_config, TuneConfig(), {}, experiment)
    journal.write_header(_trainable.__name__, settings)
    for trial in trials:
        journal.record(trial)
    journal.flush()

    restored = Tuner.restore(experiment.uri(), _trainable)
    assert restored._run_config.storage_retry == policy
    assert restored._restored is not None and restored._restored[0].retry == policy
    override = StorageRetry(max_elapsed_s=1)
    again = Tuner.restore(
        experiment.uri(), _trainable, run_config=RunConfig(storage_retry=override)
    )
    assert again._restored is not None and again._restored[0].retry == override
