"""``Tuner.restore(..., param_space=...)``: the space is checked against the one the
experiment started with, and its constants reach the restored trials."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import ray

import tune_ckpt as tune
from tune_ckpt.air import session

from ._support import run_config


def reads_payload(config: dict[str, Any]) -> None:
    """Fails on a stale payload (a reference the restored run must replace)."""
    payload = ray.get(config["payload"])
    if payload == "stale":
        raise RuntimeError("the payload is stale")
    session.report({"payload": payload, "tag": config["opts"]["tag"], "lr": config["lr"]})


def space(payload: Any, tag: str) -> dict[str, Any]:
    return {"lr": tune.uniform(0.0, 1.0), "payload": payload, "opts": {"tag": tag}}


def first_run(tmp_path: Path) -> tuple[str, float]:
    tuner = tune.Tuner(
        reads_payload,
        param_space=space(ray.put("stale"), "a"),
        run_config=run_config(tmp_path),
    )
    [result] = tuner.fit()
    assert isinstance(result.error, RuntimeError)
    return str(tmp_path / "exp"), result.config["lr"]


def test_a_re_specified_space_reaches_the_resumed_trial(tmp_path: Path) -> None:
    path, lr = first_run(tmp_path)
    restored = tune.Tuner.restore(
        path, reads_payload, resume_errored=True, param_space=space(ray.put("fresh"), "b")
    )
    [result] = restored.fit()
    assert result.error is None
    assert result.metrics["payload"] == "fresh"
    assert result.metrics["tag"] == "b"
    assert result.metrics["lr"] == lr  # a sampled value keeps the trial's own
    # Persisted: a later restore without a param_space sees the values this run used.
    [again] = tune.Tuner.restore(path, reads_payload).get_results()
    assert again.config["opts"] == {"tag": "b"}
    assert ray.get(again.config["payload"]) == "fresh"


def test_a_space_with_an_extra_key_is_refused(tmp_path: Path) -> None:
    path, _ = first_run(tmp_path)
    changed = {**space(ray.put("fresh"), "a"), "momentum": 0.9}
    with pytest.raises(ValueError, match=r"param_space\['momentum'\] \(float\) is not in"):
        tune.Tuner.restore(path, reads_payload, param_space=changed)


def test_a_domain_of_another_class_is_refused(tmp_path: Path) -> None:
    path, _ = first_run(tmp_path)
    changed = {**space(ray.put("fresh"), "a"), "lr": tune.choice([0.1, 0.2])}
    with pytest.raises(ValueError, match=r"param_space\['lr'\] is Choice, but .* Uniform"):
        tune.Tuner.restore(path, reads_payload, param_space=changed)


def test_an_experiment_without_a_recorded_structure_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Experiments written before the structure was recorded: any space, one warning."""
    path, _ = first_run(tmp_path)
    journal = Path(path) / "experiment_journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    del header["param_space_structure"]
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with caplog.at_level(logging.WARNING, logger="tune_ckpt"):
        restored = tune.Tuner.restore(
            path, reads_payload, param_space={**space(ray.put("x"), "c"), "new": 1}
        )
    assert "could not be checked" in caplog.text
    [result] = restored.get_results()
    assert result.config["opts"] == {"tag": "c"}


def test_run_resume_passes_its_config_through_the_check(tmp_path: Path) -> None:
    common: dict[str, Any] = {
        "storage_path": str(tmp_path),
        "name": "exp",
        "verbose": 0,
        "raise_on_failed_trial": False,
    }
    first = tune.run(reads_payload, config=space(ray.put("stale"), "a"), resume=True, **common)
    assert first.trials[0].error is not None
    with pytest.raises(ValueError, match=r"param_space\['opts'\]\['extra'\]"):
        tune.run(
            reads_payload,
            config={**space(ray.put("fresh"), "b"), "opts": {"tag": "b", "extra": 1}},
            resume="ERRORED_ONLY",
            **common,
        )
    second = tune.run(
        reads_payload, config=space(ray.put("fresh"), "b"), resume="ERRORED_ONLY", **common
    )
    [trial] = second.trials
    assert trial.error is None and trial.metrics["payload"] == "fresh"
