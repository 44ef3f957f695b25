"""The checks every configuration class runs at construction: errors that name the field,
the value and what is allowed."""

from __future__ import annotations

import math
import os


def is_int(value: object) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def invalid(field_name: str, value: object, allowed: str) -> ValueError:
    """The error for ``field_name=value``, saying what is allowed."""
    return ValueError(f"{field_name}={value!r} is invalid: {allowed}")


def seconds_from_env(name: str, default: float) -> float:
    """A positive, finite number of seconds from the environment variable ``name``, or
    ``default`` when it is unset; any other value raises ValueError naming the variable."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{name}={raw!r} is invalid: a number of seconds > 0")
    return value


def finite_number(
    name: str, value: object, minimum: float, strict: bool, what: str = "a finite number"
) -> float:
    """``value`` as a float when it is a finite number above ``minimum`` (``strict``) or
    not below it; else ValueError naming ``name``, the value and what is allowed."""
    number = (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )
    if (
        number is None
        or not math.isfinite(number)
        or (number <= minimum if strict else number < minimum)
    ):
        raise invalid(name, value, f"{what} {'>' if strict else '>='} {minimum:g}")
    return number
