"""Line-oriented files on storage (``result.json``, ``progress.csv``, the journal) that a
driver killed mid-append may leave with a torn last line.

Readers skip a line that does not parse, with one warning naming the file and the line;
writers cut a torn tail off before they append, so the next line is not glued to it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tune_ckpt.storage.location import StorageLocation

logger = logging.getLogger(__name__)

_warned: set[tuple[str, int]] = set()


def read_json_lines(location: StorageLocation, relative: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, in order; empty when it does not exist. A line
    that is not a JSON object is skipped with one warning."""
    if not location.exists(relative):
        return []
    return parse_json_lines(location.read_bytes(relative), location.uri(relative))


def parse_json_lines(
    data: bytes, where: str, skipped: list[int] | None = None
) -> list[dict[str, Any]]:
    """The JSON objects in ``data``; a line that is not one is skipped with one warning
    naming ``where`` and the line number, or, when the caller passes ``skipped``, with its
    number appended there for the caller to report."""
    entries = []
    report = skipped is None
    skipped = [] if skipped is None else skipped
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            skipped.append(number)
    if report and skipped and (where, skipped[0]) not in _warned:
        _warned.add((where, skipped[0]))  # once, though restore and the CLI read a file often
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        logger.warning(
            "%s: skipping line %d%s, which is not a complete JSON object (torn by an "
            "interrupted write?)",
            where,
            skipped[0],
            more,
        )
    return entries


def cut_torn_tail(location: StorageLocation, relative: str) -> None:
    """Drop a last line without its newline (a write that was cut short), so what is
    appended next starts on a line of its own."""
    if not location.exists(relative):
        return
    data = location.read_bytes(relative)
    if not data or data.endswith(b"\n"):
        return
    kept = data[: data.rfind(b"\n") + 1]
    logger.warning(
        "%s: dropping a torn last line of %d bytes (an interrupted write)",
        location.uri(relative),
        len(data) - len(kept),
    )
    location.write_bytes(relative, kept)
