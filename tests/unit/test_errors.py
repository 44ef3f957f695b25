"""Tests for tune_ckpt.errors: the exception tree and its pickling across processes."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from tune_ckpt import errors
from tune_ckpt.errors import (
    STORAGE_ERRORS,
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    ExperimentError,
    StorageError,
    StorageFullError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
    TrainableError,
    TrialError,
    TuneCkptError,
    UnsafePathError,
)

STORAGE_CLASSES = [
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageFullError,
    StorageUnavailableError,
]
PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))


def roundtrip(exc: BaseException, protocol: int) -> BaseException:
    return pickle.loads(pickle.dumps(exc, protocol=protocol))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("cls", STORAGE_CLASSES)
def test_storage_errors_pickle_with_path_and_cause(cls: type[StorageError], protocol: int) -> None:
    """Every StorageError keeps its type, path, cause and message through pickle."""
    exc = cls("s3://bucket/exp/trial", "AWS Error NETWORK_CONNECTION")
    back = roundtrip(exc, protocol)
    assert type(back) is cls
    assert back.path == "s3://bucket/exp/trial"
    assert back.cause == "AWS Error NETWORK_CONNECTION"
    assert str(back) == str(exc)
    assert "s3://bucket/exp/trial" in str(back)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_checkpoint_not_found_pickles_with_path(protocol: int) -> None:
    """CheckpointNotFoundError keeps its path and message through pickle."""
    exc = CheckpointNotFoundError("/data/exp/trial/checkpoint_000003")
    back = roundtrip(exc, protocol)
    assert type(back) is CheckpointNotFoundError
    assert back.path == "/data/exp/trial/checkpoint_000003"
    assert str(back) == str(exc)
    assert "checkpoint_000003" in str(back)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_corrupt_checkpoint_pickles_with_problems(protocol: int) -> None:
    """CorruptCheckpointError keeps its path and the list of problems through pickle."""
    problems = ["model.pt: 10 bytes, manifest says 20", "opt.pt: missing (gone)"]
    exc = CorruptCheckpointError("s3://b/exp/t/checkpoint_000001", problems)
    back = roundtrip(exc, protocol)
    assert type(back) is CorruptCheckpointError
    assert back.path == "s3://b/exp/t/checkpoint_000001"
    assert back.problems == problems
    assert str(back) == str(exc)
    assert "model.pt: 10 bytes" in str(back) and "opt.pt: missing" in str(back)


def test_corrupt_checkpoint_copies_problem_list() -> None:
    """CorruptCheckpointError keeps its own copy of the problems list."""
    problems = ["a: missing"]
    exc = CorruptCheckpointError("p", problems)
    problems.append("b: missing")
    assert exc.problems == ["a: missing"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "cls",
    [TuneCkptError, UnsafePathError, CheckpointError, TrainableError, TrialError, ExperimentError],
)
def test_message_errors_pickle(cls: type[Exception], protocol: int) -> None:
    """Errors carrying only a message keep type and message through pickle."""
    exc = cls("Traceback (most recent call last):\n  boom")
    back = roundtrip(exc, protocol)
    assert type(back) is cls
    assert str(back) == str(exc)


def test_storage_errors_tuple_is_exactly_the_storage_family() -> None:
    """STORAGE_ERRORS holds the base StorageError first, then its four subclasses."""
    assert STORAGE_ERRORS[0] is StorageError
    assert set(STORAGE_ERRORS) == set(STORAGE_CLASSES)
    assert len(STORAGE_ERRORS) == 5
    assert all(issubclass(cls, StorageError) for cls in STORAGE_ERRORS)


@pytest.mark.parametrize("cls", STORAGE_CLASSES)
def test_storage_errors_are_caught_by_the_tuple(cls: type[StorageError]) -> None:
    """``except STORAGE_ERRORS`` catches every storage error."""
    with pytest.raises(STORAGE_ERRORS):
        raise cls("/x", "cause")


@pytest.mark.parametrize("cls", STORAGE_CLASSES)
def test_storage_error_is_an_oserror(cls: type[StorageError]) -> None:
    """A StorageError is an OSError (and a TuneCkptError), so OSError handlers still work."""
    exc = cls("/x", "cause")
    assert isinstance(exc, OSError)
    assert isinstance(exc, TuneCkptError)
    with pytest.raises(OSError):
        raise exc


def test_storage_error_message_names_type_path_and_cause() -> None:
    """str(StorageError) reads '<type>: <path>: <cause>'."""
    exc = StorageNotFoundError("s3://no-such-bucket/x", "NoSuchBucket")
    assert str(exc) == "StorageNotFoundError: s3://no-such-bucket/x: NoSuchBucket"


def test_builtin_bases() -> None:
    """UnsafePathError is a ValueError and TrainableError a TypeError, as documented."""
    assert issubclass(UnsafePathError, ValueError)
    assert issubclass(TrainableError, TypeError)
    assert issubclass(CorruptCheckpointError, CheckpointError)
    assert issubclass(CheckpointNotFoundError, CheckpointError)
    assert not issubclass(CheckpointError, StorageError)


def test_every_public_error_is_a_tune_ckpt_error() -> None:
    """Every exception class the module defines derives from TuneCkptError."""
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    # 12, plus StorageFullError, two lease errors, DrainError, SpotNoticeError, TuneError,
    # NodeLostError, SupersededError
    assert len(classes) == 20
    assert all(issubclass(cls, TuneCkptError) for cls in classes)


@pytest.mark.parametrize("cls", STORAGE_CLASSES)
def test_only_unavailable_is_transient(cls: type[StorageError]) -> None:
    """Only StorageUnavailableError is worth retrying; the flag survives pickling."""
    exc = cls("/x", "cause")
    assert exc.transient is (cls is StorageUnavailableError)
    assert roundtrip(exc, pickle.HIGHEST_PROTOCOL).transient is exc.transient


def _traceback_of(fn: Callable[[], object]) -> str:
    import traceback

    try:
        fn()
    except Exception:
        return traceback.format_exc()
    raise AssertionError("did not raise")


def test_trial_error_takes_the_class_of_the_last_exception_raised() -> None:
    """Chained exceptions and multi-line messages: the class is the one the last frame
    raised; the text stays the whole traceback; pickling keeps both."""
    import json
    import pickle

    from tune_ckpt.errors import TrialError, trial_error

    def chained() -> None:
        try:
            {}["missing"]
        except KeyError as exc:
            raise json.JSONDecodeError("line one\nline two", "doc", 0) from exc

    text = _traceback_of(chained)
    error = trial_error(text)
    assert isinstance(error, json.JSONDecodeError) and isinstance(error, TrialError)
    assert not isinstance(error, KeyError)
    assert str(error) == text
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == text


def test_trial_error_falls_back_to_trial_error() -> None:
    """A class that is not importable here, or no exception line at all: a TrialError."""
    from tune_ckpt.errors import TrialError, trial_error

    for text in (
        'Traceback (most recent call last):\n  File "x.py", line 1\nnowhere_mod.Gone: no\n',
        "just a message",
        "",
    ):
        error = trial_error(text)
        assert type(error) is TrialError and str(error) == text


def test_experiment_error_is_a_value_error() -> None:
    from tune_ckpt.errors import ExperimentError, ExperimentLockedError

    assert issubclass(ExperimentError, ValueError)
    assert issubclass(ExperimentLockedError, ValueError)
