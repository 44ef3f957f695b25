"""``RunConfig(callbacks=...)`` checked at construction, and the Callback base class."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tune_ckpt as tune
from tune_ckpt.logger import LoggerCallback


class Noted(tune.Callback):
    pass


def test_run_config_refuses_what_is_not_a_callback() -> None:
    with pytest.raises(TypeError, match=r"callbacks\[1\]=.*an instance is needed"):
        tune.RunConfig(callbacks=[Noted(), Noted])
    with pytest.raises(TypeError, match=r"callbacks\[0\]=<object"):
        tune.RunConfig(callbacks=[object()])
    with pytest.raises(TypeError, match=r"callbacks=.*a list of tune_ckpt.Callback"):
        tune.RunConfig(callbacks=Noted())  # type: ignore[arg-type]


def test_callbacks_kept_as_a_tuple_in_order() -> None:
    first, second = Noted(), LoggerCallback()
    assert tune.RunConfig(callbacks=[first, second]).callbacks == (first, second)
    assert tune.RunConfig(callbacks=None).callbacks == ()
    assert tune.RunConfig().callbacks == ()


def test_every_hook_of_the_base_class_accepts_rays_keywords() -> None:
    """The base hooks do nothing and take Ray Tune's keyword arguments plus more."""
    cb = tune.Callback()
    cb.setup(stop=None, num_samples=1, total_num_samples=1, extra=1)
    for hook in ("on_step_begin", "on_step_end"):
        getattr(cb, hook)(iteration=0, trials=[], extra=1)
    for hook in (
        "on_trial_start",
        "on_trial_restore",
        "on_trial_save",
        "on_trial_complete",
        "on_trial_recover",
        "on_trial_error",
    ):
        getattr(cb, hook)(iteration=0, trials=[], trial=None, extra=1)
    cb.on_trial_result(iteration=0, trials=[], trial=None, result={}, extra=1)  # type: ignore[arg-type]
    cb.on_checkpoint(iteration=0, trials=[], trial=None, checkpoint=None, extra=1)  # type: ignore[arg-type]
    cb.on_experiment_end(trials=[], extra=1)


def test_tbx_logger_without_tensorboardx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tune_ckpt.logger import TBXLoggerCallback

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "tune_ckpt\[tensorboard\]"'):
        TBXLoggerCallback()


def test_logger_package_imports_without_tensorboardx() -> None:
    code = (
        "import sys; sys.modules['tensorboardX'] = None; "
        "from tune_ckpt.logger import LoggerCallback; import tune_ckpt; "
        "assert issubclass(LoggerCallback, tune_ckpt.Callback)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
