"""``with_parameters`` without Ray: names, what pickles, bad input, the objects in the driver
and their absence in a process they were not delivered to."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from ray import cloudpickle

import tune_ckpt as tune
from tune_ckpt.errors import TrainableError
from tune_ckpt.pickling_checks import pickle_problem
from tune_ckpt.shared_objects import objects_of
from tune_ckpt.trainable import FunctionTrainable, as_trainable_class, resource_request


class Model(tune.Trainable):
    def setup(self, config: dict[str, Any], data: Any = None, scale: float = 1.0) -> None:
        self.total = float(np.sum(data)) * scale

    def step(self) -> dict[str, Any]:
        return {"total": self.total}


def train_fn(config: dict[str, Any], data: Any, scale: float = 1.0) -> None:
    tune.report({"total": float(np.sum(data)) * scale})


BIG = np.ones(50 * 2**20 // 8)  # 50 MiB of float64


def test_the_trainable_keeps_its_name_and_pickles_without_the_objects() -> None:
    for original in (Model, train_fn):
        shared = tune.with_parameters(original, data=BIG, scale=2.0)
        assert shared.__name__ == original.__name__  # what the journal header records
        blob = cloudpickle.dumps(shared)
        assert len(blob) < 100_000  # the array is not in what each worker receives
        assert pickle_problem(shared) is None
        assert as_trainable_class(shared) is shared


def test_the_objects_reach_setup_and_the_function_in_the_driver() -> None:
    model = tune.with_parameters(Model, data=np.arange(4.0), scale=2.0)({}, "t")
    assert model.total == 12.0
    fn_trainable = tune.with_parameters(train_fn, data=np.arange(4.0))({}, "t")
    assert isinstance(fn_trainable, FunctionTrainable)
    assert fn_trainable.train()["total"] == 6.0
    fn_trainable.stop()


def test_a_process_the_objects_were_not_delivered_to_fails_clearly() -> None:
    shared = cloudpickle.loads(cloudpickle.dumps(tune.with_parameters(Model, data=BIG)))
    with pytest.raises(TrainableError, match=r"\['data'\].*'Model' were not delivered"):
        shared({}, "t")


def test_resources_survive_either_order() -> None:
    inner = tune.with_resources(tune.with_parameters(Model, data=1), {"cpu": 2})
    outer = tune.with_parameters(tune.with_resources(train_fn, {"cpu": 0.5}), data=1)
    assert resource_request(inner, {}) == {"cpu": 2.0}
    assert resource_request(as_trainable_class(outer), {}) == {"cpu": 0.5}
    assert objects_of(inner) is not None and objects_of(outer) is not None


def test_an_object_that_cannot_be_pickled_is_named() -> None:
    with pytest.raises(TypeError, match=r"with_parameters: lock=lock cannot be pickled"):
        tune.with_parameters(train_fn, data=BIG, lock=threading.Lock())


@pytest.mark.parametrize(
    ("trainable", "objects", "error", "match"),
    [
        (train_fn, {}, ValueError, "needs at least one keyword object"),
        (dict, {"data": 1}, TrainableError, "needs a tune_ckpt.Trainable subclass"),
        (42, {"data": 1}, TrainableError, "needs a tune_ckpt.Trainable subclass"),
    ],
)
def test_bad_arguments_are_refused(
    trainable: Any, objects: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        tune.with_parameters(trainable, **objects)


def test_nesting_is_refused_with_the_remedy() -> None:
    once = tune.with_parameters(Model, data=1)
    with pytest.raises(ValueError, match="pass all its objects in one with_parameters call"):
        tune.with_parameters(once, scale=2.0)
