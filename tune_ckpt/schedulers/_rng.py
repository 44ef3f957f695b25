"""A ``random.Random``'s state as JSON and back, so a restored scheduler draws the same."""

from __future__ import annotations

import random
from typing import Any


def rng_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def rng_from_json(data: list[Any]) -> random.Random:
    version, internal, gauss_next = data
    rng = random.Random()
    rng.setstate((int(version), tuple(int(x) for x in internal), gauss_next))
    return rng
