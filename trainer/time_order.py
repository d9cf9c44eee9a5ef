"""A log's records put in event-time order without holding them all in memory.

Zeek writes a connection when it ends, so a conn log is not in ``ts`` order, and ``score``,
``replay`` and ``evaluate`` (with traffic windows) must sort it before use.  Sorting a day of a
busy site's log in memory holds every record at once (``score``: 681 MB a million records, so
gigabytes for tens of millions).  Here the records, each already turned into the bytes it will
be used as, are sorted in runs of at most :data:`RUN`; a log longer than one run has its sorted
runs written to temporary files and merged back (an external merge sort), so memory follows
:data:`RUN`, and the disk holds about the log's size meanwhile.  The order is the same either
way: by key, ties in the order read.
"""

from __future__ import annotations

import heapq
import itertools
import struct
import tempfile
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

TimeKey = tuple[int, float]  # trainer.readers.time_key: (0, seconds), or (1, 0.0) for none
Keyed = tuple[TimeKey, int, bytes]  # key, position read at, value

#: records sorted in memory at a time (about 300 MB of Zeek records as JSON)
RUN = 500_000
#: per spilled record: the key's flag and seconds, the position, the value's length
_HEADER = struct.Struct("<bdqI")


def in_key_order(
    items: Iterable[tuple[TimeKey, bytes]], *, run: int | None = None
) -> Generator[Keyed, None, None]:
    """``(key, position, value)`` of each ``(key, value)`` item, in ``(key, position)`` order,
    where ``position`` is the item's place in ``items`` (see the module doc), sorted in runs
    of ``run`` (default :data:`RUN`).  At most one run is in memory: the next item is looked
    at before a full run is kept or spilled."""
    run = RUN if run is None else run
    numbered = _numbered(items)
    part = sorted(itertools.islice(numbered, run), key=_order)
    following = next(numbered, None)
    if following is None:  # one run: no file
        yield from part
        return
    with tempfile.TemporaryDirectory(prefix="stream-od-sort-") as tmp:
        spilled = [_spill(part, Path(tmp) / "run-0")]
        part = []  # let go of a run before the next is read
        while following is not None:
            part = [following, *itertools.islice(numbered, run - 1)]
            part.sort(key=_order)
            spilled.append(_spill(part, Path(tmp) / f"run-{len(spilled)}"))
            part = []
            following = next(numbered, None)
        files = [path.open("rb") for path in spilled]
        try:
            yield from heapq.merge(*map(_read, files), key=_order)
        finally:
            for fh in files:
                fh.close()


def _numbered(items: Iterable[tuple[TimeKey, bytes]]) -> Iterator[Keyed]:
    for position, (key, value) in enumerate(items):
        yield key, position, value


def _order(item: Keyed) -> tuple[TimeKey, int]:
    return item[0], item[1]


def _spill(part: list[Keyed], path: Path) -> Path:
    with path.open("wb") as out:
        for (flag, seconds), position, value in part:
            out.write(_HEADER.pack(flag, seconds, position, len(value)))
            out.write(value)
    return path


def _read(fh: BinaryIO) -> Iterator[Keyed]:
    size = _HEADER.size
    while header := fh.read(size):
        flag, seconds, position, length = _HEADER.unpack(header)
        yield (flag, seconds), position, fh.read(length)
