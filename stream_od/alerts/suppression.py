"""Alert suppression per entity, in event time, restorable exactly after a restart.

One scanning host can cross the threshold thousands of times a minute; a SIEM wants to hear
of it once, then how bad it got.  For each *entity* (the values of ``suppress_by``: e.g. the
originator's address, always with the detector) the first alert of a window is emitted at once
and the following ones within ``window_s`` of it are counted; when the partition's event time
passes the window's end, one summary carries the count, the first and last event time and
the highest score.  Emitted alerts + the counts in the summaries = the records over the
threshold.

State is per input partition and changes only with the partition's records, so it is
deterministic.  Every change is also written, in the batch's transaction, to a compacted
changelog topic (one partition per input partition, as Kafka Streams keeps a store); a
worker that takes the partition over reads it back before its first batch, so a restart or a
rebalance neither loses a summary nor emits one twice.  A summary waits for the partition's
event time to move on: an idle partition holds its open windows (their first alert is out).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from stream_od.alerts.facts import Alert, Connection, KafkaCoordinates, Summary
from stream_od.alerts.identity import IdentityReader, summary_id
from stream_od.alerts.jsonsafe import json_safe
from stream_od.records import field_value
from stream_od.schema import FeatureSchema

CONNECTION_PARTS = frozenset(Connection._fields)
STREAM_TIME = "\0stream_time"
NONE_CLOSED: tuple[Window, ...] = ()  # what admit_row returns when it closed no window


@dataclass(slots=True)
class Window:
    first_ms: int
    last_ms: int
    count: int  # alerts held back after the first
    max_score: float
    first_id: str
    entity: dict[str, Any]
    last: KafkaCoordinates  # the last held-back alert's record (a summary's coordinates)

    def to_json(self) -> bytes:
        k = self.last
        return orjson.dumps(
            {
                "first_ms": self.first_ms,
                "last_ms": self.last_ms,
                "count": self.count,
                "max_score": self.max_score,
                "first_id": self.first_id,
                "entity": self.entity,
                "last": [k.topic, k.partition, k.offset, k.timestamp_ms, k.key],
            }
        )

    @classmethod
    def from_json(cls, value: bytes) -> Window:
        d = orjson.loads(value)
        return cls(
            first_ms=d["first_ms"],
            last_ms=d["last_ms"],
            count=d["count"],
            max_score=d["max_score"],
            first_id=d["first_id"],
            entity=d["entity"],
            last=KafkaCoordinates(*d["last"]),
        )


def check_suppress_by(by: Iterable[str], schema: FeatureSchema) -> None:
    """A connection part the schema cannot promote is the same (unknown) value for every
    alert, so every alert would be one entity and suppression would hold back nearly all."""
    identity = schema.identity.to_dict() if schema.identity is not None else {}
    missing = [
        name
        for name in by
        if name in CONNECTION_PARTS and name != "community_id" and name not in identity
    ]
    if missing:
        raise ValueError(
            f"suppress_by {missing}: the model's schema {schema.name!r} has no "
            f"such field in its [identity] table (it has {sorted(identity)}), so "
            "every alert would be one entity; choose parts it has, or record "
            "field paths"
        )


def entity_key(entity: dict[str, Any]) -> str:
    """An entity as the key of its window (and of its changelog entry)."""
    return orjson.dumps(entity, option=orjson.OPT_SORT_KEYS).decode()


def entity_of(alert: Alert, by: tuple[str, ...], detector: str) -> dict[str, Any]:
    """The suppression key's values: a connection part (``source_ip``, ...) or a record path."""
    out: dict[str, Any] = {"detector": detector}
    for name in by:
        if name in CONNECTION_PARTS:
            out[name] = getattr(alert.connection, name)
        elif name != "detector":
            # as the record has it, made writable (the entity is a key and goes out in summaries)
            out[name] = None if alert.record is None else json_safe(field_value(alert.record, name))
    return out


def entities_of(
    identity: IdentityReader,
    records: Sequence[dict[str, Any]],
    by: tuple[str, ...],
    detector: str,
    labels: frozenset[str] = frozenset(),
) -> list[tuple[str, dict[str, Any]]]:
    """Each record's entity and its key, as :func:`entity_of` gives them for the record's
    alert, read as columns before any alert is built (a path to one of the ``labels``, the
    fields an alert leaves out, is None in every entity, as the alert's record lacks it).
    Each distinct entity is built and keyed once: a storm is a few entities many times over."""
    names = [name for name in by if name != "detector"]
    parts = sorted({name for name in names if name in CONNECTION_PARTS})
    columns = dict(zip(parts, identity.parts(records, parts))) if parts else {}
    for name in names:
        if name in labels:
            columns[name] = [None] * len(records)
        elif name not in CONNECTION_PARTS:
            columns[name] = [json_safe(field_value(r, name)) for r in records]
    # Connection parts are text, ints and None, one JSON text each; a record path may hold
    # values Python finds equal that JSON writes apart (1, 1.0, True): those rows are keyed
    # one by one.
    plain = all(name in CONNECTION_PARTS for name in names)
    rows = zip(*(columns[name] for name in names)) if names else itertools.repeat((), len(records))
    seen: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    out = []
    for values in rows:
        cached = plain or all(type(v) in PLAIN for v in values)
        found = seen.get(values) if cached else None
        if found is None:
            entity: dict[str, Any] = {"detector": detector}
            for name, value in zip(names, values):
                entity[name] = value
            found = (entity_key(entity), entity)
            if cached:
                seen[values] = found
        out.append(found)
    return out


PLAIN = frozenset({str, int, type(None)})


class PartitionSuppression:
    """The suppression state of one input partition."""

    def __init__(self, window_s: float, by: tuple[str, ...], detector: str) -> None:
        self.window_s = float(window_s)
        self.window_ms = int(round(window_s * 1000))
        self.by = tuple(by)
        self.detector = detector
        self.windows: dict[str, Window] = {}
        self.stream_time_ms: int | None = None
        self._ends: list[tuple[int, str]] = []  # (window end, entity key), stale entries skipped
        self._dirty: set[str] = set()
        # What the current batch changed, to put back if its transaction aborts.
        self._undo: dict[str, Window | None] = {}
        self._undo_time: tuple[int | None] | None = None

    def __len__(self) -> int:
        return len(self.windows)

    def admit(self, alert: Alert) -> tuple[bool, list[Alert]]:
        """Whether ``alert`` is emitted, and the summaries it closes (its entity's expired
        window).  Alerts arrive in partition order."""
        entity = entity_of(alert, self.by, self.detector)
        opened, closed = self.admit_row(
            entity_key(entity), entity, alert.event_time_ms, alert.score, alert.kafka, alert.id
        )
        return opened is not None, [self.summary(w) for w in closed]

    def admit_row(
        self,
        key: str,
        entity: dict[str, Any],
        t: int,
        score: float,
        kafka: KafkaCoordinates,
        first_id: str = "",
    ) -> tuple[Window | None, Sequence[Window]]:
        """:meth:`admit` from an alert's parts, before the alert is built (the worker builds
        only the alerts that go out): the window it opened (None: held back; the caller sets
        its ``first_id`` once the alert exists) and the windows with held-back alerts it
        closed (:meth:`summary` makes their summaries, once their ``first_id`` is known)."""
        w = self.windows.get(key)
        if key not in self._undo:
            self._remember(key)
        self._dirty.add(key)
        if w is not None and t < w.first_ms + self.window_ms:  # held back: the storm's path
            w.count += 1
            if t > w.last_ms:
                w.last_ms = t
            if score > w.max_score:
                w.max_score = score
            w.last = kafka
            return None, NONE_CLOSED
        closed = self._close(key) if w is not None else NONE_CLOSED
        w = self.windows[key] = Window(t, t, 0, score, first_id, entity, kafka)
        heapq.heappush(self._ends, (t + self.window_ms, key))
        return w, closed

    def advance(self, stream_time_ms: int) -> list[Alert]:
        """Move the partition's event time on; the summaries of the windows that ended."""
        return [self.summary(w) for w in self.advance_windows(stream_time_ms)]

    def advance_windows(self, stream_time_ms: int) -> list[Window]:
        """:meth:`advance`, giving the ended windows that held alerts back."""
        if self.stream_time_ms is not None and stream_time_ms <= self.stream_time_ms:
            return []
        if self._undo_time is None:
            self._undo_time = (self.stream_time_ms,)
        self.stream_time_ms = stream_time_ms
        self._dirty.add(STREAM_TIME)
        closed: list[Window] = []
        while self._ends and self._ends[0][0] <= stream_time_ms:
            end, key = heapq.heappop(self._ends)
            w = self.windows.get(key)
            if w is not None and w.first_ms + self.window_ms == end:
                self._remember(key)
                closed.extend(self._close(key))
        return closed

    # -- one batch at a time -------------------------------------------------------------
    def _remember(self, key: str) -> None:
        if key not in self._undo:
            w = self.windows.get(key)
            self._undo[key] = None if w is None else replace(w)

    def commit(self) -> None:
        """The batch's transaction committed: its changes stay."""
        self._undo.clear()
        self._undo_time = None

    def rollback(self) -> None:
        """The batch's transaction aborted: back to the state before it (it is redone)."""
        for key, w in self._undo.items():
            if w is None:
                self.windows.pop(key, None)
            else:
                self.windows[key] = w
                heapq.heappush(self._ends, (w.first_ms + self.window_ms, key))
        if self._undo_time is not None:
            self.stream_time_ms = self._undo_time[0]
        self._undo.clear()
        self._undo_time = None
        self._dirty.clear()

    def _close(self, key: str) -> list[Window]:
        w = self.windows.pop(key)
        self._dirty.add(key)
        return [w] if w.count else []

    def summary(self, w: Window) -> Alert:
        """The summary alert of a closed window that held alerts back."""
        conn = Connection(**{k: v for k, v in w.entity.items() if k in CONNECTION_PARTS})
        return Alert(
            id=summary_id(w.first_id),
            event_time_ms=w.last_ms,
            event_time_source="record",
            detected_at_ms=0,
            score=w.max_score,
            severity="",
            risk_score=0.0,
            top_features=[],
            record=None,
            connection=conn,
            kafka=w.last,
            summary=Summary(
                count=w.count,
                first_ms=w.first_ms,
                last_ms=w.last_ms,
                max_score=w.max_score,
                window_s=self.window_s,
                entity=w.entity,
                first_alert_id=w.first_id,
            ),
        )

    # -- the changelog -------------------------------------------------------------------
    def changes(self) -> list[tuple[str, bytes | None]]:
        """(entity key, state or ``None`` for a closed window) changed since the last call."""
        out: list[tuple[str, bytes | None]] = []
        for key in sorted(self._dirty):
            if key == STREAM_TIME:
                out.append((key, orjson.dumps(self.stream_time_ms)))
            else:
                w = self.windows.get(key)
                out.append((key, None if w is None else w.to_json()))
        self._dirty.clear()
        return out

    def restore(self, entries: Iterable[tuple[str, bytes | None]]) -> None:
        """Rebuild from changelog entries in log order (the last value of a key wins)."""
        latest: dict[str, bytes | None] = {}
        for key, value in entries:
            latest[key] = value
        self.windows.clear()
        self._ends.clear()
        self._dirty.clear()
        self.commit()
        self.stream_time_ms = None
        for key, value in latest.items():
            if value is None:
                continue
            if key == STREAM_TIME:
                self.stream_time_ms = orjson.loads(value)
                continue
            w = Window.from_json(value)
            self.windows[key] = w
            self._ends.append((w.first_ms + self.window_ms, key))
        heapq.heapify(self._ends)
