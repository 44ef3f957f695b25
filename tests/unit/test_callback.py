"""``RunConfig(callbacks=...)`` checked at construction, and the Callback base class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_rerun_within_the_same_second_keeps_the_earlier_event_file(tmp_path: Path) -> None:
    """tensorboardX names an event file by the second and the host: a trial restarted
    within that second must not truncate the file of its first run (steps 1 and 2 here)."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    from tune_ckpt.logger import TBXLoggerCallback
    from tune_ckpt.trial import Trial

    trial = Trial("t0", {"lr": 0.1}, "t0")
    trial.set_paths(str(tmp_path / "t0"), str(tmp_path / "t0"))
    logger = TBXLoggerCallback()
    logger.log_trial_start(trial)
    for step in (1, 2, 3):
        trial.last_result = {"training_iteration": step, "loss": float(step)}
        logger.log_trial_result(step, trial, trial.last_result)
    trial.last_result = {"training_iteration": 2, "loss": 2.0}  # restored checkpoint 2
    logger.log_trial_restore(trial)
    for step in (3, 4):
        logger.log_trial_result(step, trial, {"training_iteration": step, "loss": 10.0 * step})
    logger.log_trial_end(trial)
    assert len(list((tmp_path / "t0").glob("events.out.tfevents.*"))) == 2
    mux = EventMultiplexer().AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    (run,) = mux.Runs()
    losses = [(e.step, e.value) for e in mux.Scalars(run, "ray/tune/loss")]
    assert losses == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
