"""Backend errors: translated into StorageErrors by kind, and retried when transient.

The kind of an error is read from its structure, never by searching its message text:

* its Python type and ``errno`` (local disks and NFS, and pyarrow's own errors, which carry
  the errno of the failed call: ``FileNotFoundError`` for a missing S3 key too);
* for S3, the error code pyarrow writes into the message in a fixed format
  (``AWS Error <CODE> during <Op> operation: ...``, with ``(HTTP status NNN)`` after
  ``UNKNOWN`` and ``Unable to parse ExceptionName: <S3 Code>`` when the SDK has no name for
  the S3 error code);
* arrow's one uncoded S3 message, ``Bucket '<name>' not found.``, matched whole from its
  start.

Transient errors become ``StorageUnavailableError`` (``transient``) and :func:`retrying`
tries again under a :class:`~tune_ckpt.config.StorageRetry`; everything else raises at once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from tune_ckpt.config import StorageRetry
from tune_ckpt.errors import (
    StorageError,
    StorageFullError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

ErrorKind = type[StorageError]

# ESTALE (an NFS handle to a file replaced on the server) is transient: a retry of the whole
# operation looks the path up again and gets a fresh handle.
_ERRNO_KINDS: dict[int, ErrorKind] = {
    errno.EAGAIN: StorageUnavailableError,
    errno.EINTR: StorageUnavailableError,
    errno.ETIMEDOUT: StorageUnavailableError,
    errno.ECONNRESET: StorageUnavailableError,
    errno.ECONNREFUSED: StorageUnavailableError,
    errno.ECONNABORTED: StorageUnavailableError,
    errno.EHOSTUNREACH: StorageUnavailableError,
    errno.ENETUNREACH: StorageUnavailableError,
    errno.ENETDOWN: StorageUnavailableError,
    errno.ENETRESET: StorageUnavailableError,
    errno.ESTALE: StorageUnavailableError,
    errno.ENOENT: StorageNotFoundError,
    errno.EACCES: StoragePermissionError,
    errno.EPERM: StoragePermissionError,
    errno.EROFS: StoragePermissionError,
    errno.ENOSPC: StorageFullError,
    errno.EDQUOT: StorageFullError,
}

# pyarrow's names of the AWS SDK's error types (arrow/filesystem/s3_internal.h).
_AWS_CODE_KINDS: dict[str, ErrorKind] = {
    "SLOW_DOWN": StorageUnavailableError,
    "THROTTLING": StorageUnavailableError,
    "SERVICE_UNAVAILABLE": StorageUnavailableError,
    "INTERNAL_FAILURE": StorageUnavailableError,
    "REQUEST_TIMEOUT": StorageUnavailableError,
    "NETWORK_CONNECTION": StorageUnavailableError,
    "ACCESS_DENIED": StoragePermissionError,
    "INVALID_ACCESS_KEY_ID": StoragePermissionError,
    "INVALID_CLIENT_TOKEN_ID": StoragePermissionError,
    "SIGNATURE_DOES_NOT_MATCH": StoragePermissionError,
    "MISSING_AUTHENTICATION_TOKEN": StoragePermissionError,
    "UNRECOGNIZED_CLIENT": StoragePermissionError,
    "INVALID_SIGNATURE": StoragePermissionError,
    "NO_SUCH_BUCKET": StorageNotFoundError,
    "NO_SUCH_KEY": StorageNotFoundError,
    "RESOURCE_NOT_FOUND": StorageNotFoundError,
}

# S3 error codes (the <Code> of the response) that the SDK reports as UNKNOWN.
_S3_CODE_KINDS: dict[str, ErrorKind] = {
    "SlowDown": StorageUnavailableError,
    "ServiceUnavailable": StorageUnavailableError,
    "InternalError": StorageUnavailableError,
    "RequestTimeout": StorageUnavailableError,
    "Throttling": StorageUnavailableError,
    "ThrottlingException": StorageUnavailableError,
    "TooManyRequests": StorageUnavailableError,
    "AccessDenied": StoragePermissionError,
    "AllAccessDisabled": StoragePermissionError,
    "InvalidAccessKeyId": StoragePermissionError,
    "NoSuchBucket": StorageNotFoundError,
    "NoSuchKey": StorageNotFoundError,
    "QuotaExceeded": StorageFullError,
    "InsufficientStorage": StorageFullError,
    "XMinioStorageFull": StorageFullError,
}

_HTTP_KINDS: dict[int, ErrorKind] = {
    408: StorageUnavailableError,
    429: StorageUnavailableError,
    500: StorageUnavailableError,
    502: StorageUnavailableError,
    503: StorageUnavailableError,
    504: StorageUnavailableError,
    401: StoragePermissionError,
    403: StoragePermissionError,
    404: StorageNotFoundError,
    507: StorageFullError,
}

# The structured part of pyarrow's S3 errors; it follows the message's start or the
# "When <doing> ...: " context pyarrow puts before it.
_AWS_ERROR = re.compile(
    r"(?:^|: )AWS Error (?P<code>[A-Z_]+|\[code \d+\])"
    r"(?: \(HTTP status (?P<status>\d{3})\))?"
    r" during \w+ operation: "
    r"(?:Unable to parse ExceptionName: (?P<name>\w+) )?"
)
_MISSING_BUCKET = re.compile(r"^Bucket '[^']*' not found(?:\.|$)")


def classify(exc: BaseException) -> ErrorKind:
    """The StorageError subclass a backend exception belongs to (the base class when its
    kind is not known: such errors are not retried)."""
    if isinstance(exc, StorageError):
        return type(exc)
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in _ERRNO_KINDS:
        return _ERRNO_KINDS[code]
    if isinstance(exc, ConnectionError | TimeoutError):
        return StorageUnavailableError
    if isinstance(exc, FileNotFoundError):
        return StorageNotFoundError
    if isinstance(exc, PermissionError):
        return StoragePermissionError
    message = str(exc)
    aws = _AWS_ERROR.search(message)
    if aws is not None:
        name, status = aws.group("name"), aws.group("status")
        if name in _S3_CODE_KINDS:
            return _S3_CODE_KINDS[name]
        if aws.group("code") in _AWS_CODE_KINDS:
            return _AWS_CODE_KINDS[aws.group("code")]
        if status is not None and int(status) in _HTTP_KINDS:
            return _HTTP_KINDS[int(status)]
        return StorageError
    if _MISSING_BUCKET.match(message):
        return StorageNotFoundError
    return StorageError


def translate_error(exc: BaseException, path: str) -> StorageError:
    """The StorageError of the matching kind for a backend exception, naming ``path``."""
    if isinstance(exc, StorageError):
        return exc
    message = str(exc).strip() or type(exc).__name__
    return classify(exc)(path, message)


@contextlib.contextmanager
def backend_errors(path: str) -> Iterator[None]:
    """Re-raise OS/pyarrow errors inside the block as StorageErrors naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:  # pyarrow raises OSError subclasses for every backend failure
        raise translate_error(exc, path) from exc


_local = threading.local()


@contextlib.contextmanager
def attempt_once() -> Iterator[None]:
    """Storage calls in the block (on this thread) make one attempt each: for cleanup after
    storage already failed past its retries, which must not wait the budget out again."""
    before = getattr(_local, "active", False)
    _local.active = True
    try:
        yield
    finally:
        _local.active = before


def retrying(
    policy: StorageRetry,
    operation: str,
    path: str,
    fn: Callable[[], T],
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    uniform: Callable[[], float] = random.random,
) -> T:
    """Run ``fn`` (one attempt of ``operation`` on ``path``), translating backend errors,
    and run it again after transient ones until ``policy.max_elapsed_s`` have passed.

    Each retry is logged at INFO; giving up is logged as an ERROR and raises the last error
    (its cause saying how many attempts were made). Inside another ``retrying`` call on the
    same thread, ``fn`` runs once: the outer call retries the whole, so budgets never
    multiply.
    """
    if getattr(_local, "active", False):
        with backend_errors(path):
            return fn()
    started = clock()
    attempt = 1
    while True:
        _local.active = True
        try:
            with backend_errors(path):
                return fn()
        except StorageError as exc:
            error = exc
        finally:
            _local.active = False
        elapsed = clock() - started
        remaining = policy.max_elapsed_s - elapsed
        if not error.transient:
            raise error
        if remaining <= 0:
            logger.error(
                "storage %s of %s failed after %d attempts in %.1f s, giving up: %s",
                operation,
                path,
                attempt,
                elapsed,
                error.cause,
            )
            cause = f"{error.cause} (gave up after {attempt} attempts in {elapsed:.1f} s)"
            raise type(error)(error.path, cause) from error
        wait = min(policy.backoff(attempt, uniform()), remaining)
        logger.info(
            "storage %s of %s failed (attempt %d), retrying in %.2f s: %s",
            operation,
            path,
            attempt,
            wait,
            error.cause,
        )
        sleep(wait)
        attempt += 1
