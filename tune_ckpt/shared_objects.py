"""``with_parameters`` (Ray Tune's name; this module is named for what it keeps, so it does not
shadow the function on the package): large objects put once in Ray's object store and handed
to every trial.

``with_parameters(trainable, **objects)`` returns a trainable class named after
``trainable``: a class trainable gets the objects as keyword arguments of
``setup(config, **objects)``, a function ``fn(config, **objects)``. The objects stay in the
driver (the returned class pickles without them, so the trainable sent to each worker and
the pickle check stay small); the driver puts them in the object store once per
``Tuner.fit`` (:func:`put_objects`, called where the trial actors are started, with Ray
initialised) and each trial's actor fetches them (:func:`bind_objects`): numpy arrays arrive
as read-only views of the node's shared memory, one copy per node, not one per trial.

Object references cannot outlive the driver, so nothing of them is persisted: a restored
experiment gets its objects from the trainable given to ``Tuner.restore``, built again by
``with_parameters`` (with the same or new objects).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from typing import Any

from tune_ckpt.errors import TrainableError
from tune_ckpt.trainable import FunctionTrainable, Trainable, wrap_function

OBJECTS_ATTR = "__tune_ckpt_with_parameters__"


class SharedObjects:
    """The objects of one ``with_parameters`` call: their values in the driver (or, in a
    worker, once fetched), never pickled with the trainable."""

    def __init__(self, objects: Mapping[str, Any], trainable_name: str) -> None:
        self.names = tuple(objects)
        self.trainable_name = trainable_name
        self._values: dict[str, Any] | None = dict(objects)

    def __getstate__(self) -> dict[str, Any]:
        # The values travel through the object store (put_objects), not with the class.
        return {"names": self.names, "trainable_name": self.trainable_name, "_values": None}

    def values(self) -> dict[str, Any]:
        """The objects by name; raises in a worker they were not delivered to."""
        if self._values is None:
            raise TrainableError(
                f"the objects {list(self.names)} that with_parameters gave trainable "
                f"{self.trainable_name!r} were not delivered to this process: it was sent "
                "to a Ray worker by other means than a tune_ckpt Tuner"
            )
        return self._values

    def bind(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)


def _pickle_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot go into the object store, or None. Pickles into a sink with
    out-of-band buffers discarded, so a large array costs no copy."""
    from ray import cloudpickle

    class _Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            return len(memoryview(data))

    try:
        pickler = cloudpickle.CloudPickler(_Sink(), protocol=5, buffer_callback=lambda _: True)
        pickler.dump(value)
    except Exception as exc:
        return f"{name}={type(value).__name__} cannot be pickled ({type(exc).__name__}: {exc})"
    return None


def with_parameters(trainable: Any, **objects: Any) -> type[Trainable]:
    """A trainable that receives ``objects`` in every trial, put once in the object store.

    Ray Tune's ``tune.with_parameters``: ``setup(self, config, **objects)`` for a
    :class:`~tune_ckpt.Trainable` subclass, ``fn(config, **objects)`` for a function. The
    result keeps the trainable's name (the experiment's journal matches it on restore) and
    its resources (``with_resources``), and may itself be passed to ``with_resources``.
    Raises ``TypeError`` for an object that cannot be pickled, naming it.
    """
    if not objects:
        raise ValueError("with_parameters(trainable) needs at least one keyword object")
    if getattr(trainable, OBJECTS_ATTR, None) is not None:
        raise ValueError(
            f"trainable {getattr(trainable, '__name__', trainable)!r} already comes from "
            "with_parameters: pass all its objects in one with_parameters call"
        )
    for key, value in objects.items():
        problem = _pickle_problem(key, value)
        if problem is not None:
            raise TypeError(f"with_parameters: {problem}; objects must pickle to be shared")
    if isinstance(trainable, type):
        if not issubclass(trainable, Trainable) or issubclass(trainable, FunctionTrainable):
            raise TrainableError(
                f"with_parameters(trainable={trainable.__name__!r}) needs a "
                "tune_ckpt.Trainable subclass or a function fn(config, **objects)"
            )
        return _for_class(trainable, SharedObjects(objects, trainable.__name__))
    if callable(trainable):
        name = getattr(trainable, "__name__", "function_trainable")
        return _for_function(trainable, SharedObjects(objects, name))
    raise TrainableError(
        f"with_parameters(trainable={trainable!r}) needs a tune_ckpt.Trainable subclass or "
        "a function fn(config, **objects)"
    )


def _named_like(cls: type, original: Any) -> None:
    # Pickled by value (not found under its module and name), named as the original.
    cls.__name__ = getattr(original, "__name__", cls.__name__)
    cls.__qualname__ = getattr(original, "__qualname__", cls.__qualname__)
    cls.__module__ = getattr(original, "__module__", cls.__module__)
    cls.__doc__ = getattr(original, "__doc__", None)


def _for_class(trainable: type[Trainable], shared: SharedObjects) -> type[Trainable]:
    class WithParameters(trainable):  # type: ignore[valid-type,misc]  # a runtime base
        def setup(self, config: dict[str, Any]) -> None:
            super().setup(config, **shared.values())

    setattr(WithParameters, OBJECTS_ATTR, shared)
    _named_like(WithParameters, trainable)
    return WithParameters


def _for_function(fn: Any, shared: SharedObjects) -> type[Trainable]:
    base = wrap_function(fn)

    class WithParameters(base):  # type: ignore[valid-type,misc]  # a runtime base
        def setup(self, config: dict[str, Any]) -> None:
            super().setup(config)
            # The instance's function: the user's with the objects bound (reset_config
            # calls setup again, so this holds for a reused trainable too).
            self._fn = functools.partial(fn, **shared.values())

    setattr(WithParameters, OBJECTS_ATTR, shared)  # with_resources' request: from base
    _named_like(WithParameters, fn)
    return WithParameters


def objects_of(trainable_cls: type) -> SharedObjects | None:
    """The objects ``with_parameters`` attached to this trainable class, if any."""
    shared = getattr(trainable_cls, OBJECTS_ATTR, None)
    return shared if isinstance(shared, SharedObjects) else None


def put_objects(trainable_cls: type) -> dict[str, Any]:
    """In the driver, with Ray initialised: the class's objects put in the object store,
    once, as ``{name: ObjectRef}`` (empty for other trainables). The caller holds the
    references for as long as trials may start, and hands them to every trial's actor."""
    shared = objects_of(trainable_cls)
    if shared is None:
        return {}
    import ray

    refs = {}
    for name, value in shared.values().items():
        try:
            refs[name] = ray.put(value)
        except Exception as exc:
            raise TrainableError(
                f"with_parameters object {name!r} ({type(value).__name__}) of trainable "
                f"{shared.trainable_name!r} could not be put in Ray's object store: {exc}"
            ) from exc
    return refs


def bind_objects(trainable_cls: type, refs: Mapping[str, Any]) -> None:
    """In a trial's actor: fetch the objects ``put_objects`` put and make them what the
    class's trials receive."""
    shared = objects_of(trainable_cls)
    if shared is None or not refs:
        return
    import ray

    names = list(refs)
    values = ray.get([refs[name] for name in names])
    shared.bind(dict(zip(names, values, strict=True)))
