"""Alert volume control: suppression per entity, then a per-worker ceiling on alerts/s.

:mod:`stream_od.alerts.suppression` keeps one partition's state; this module keeps one per
input partition the worker holds, passes a batch's alerts through them in order, and applies
the ceiling to what is left.  The ceiling is the one part that is not deterministic (it
counts wall-clock seconds): it is a last resort against a flood, off by default, and every
alert it drops is counted in ``stream_od_alerts_dropped_total{reason="rate_limit"}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream_od.alerts.facts import Alert, KafkaCoordinates
from stream_od.alerts.policy import AlertPolicy
from stream_od.alerts.suppression import PartitionSuppression, Window, entities_of

Stream = tuple[str, int]  # an input partition: (topic, partition)


@dataclass
class Passed:
    """What a batch's alerts became."""

    alerts: list[Alert] = field(default_factory=list)  # to emit
    summaries: list[Alert] = field(default_factory=list)  # closed windows (facts incomplete)
    suppressed: int = 0
    dropped: int = 0


@dataclass
class Admitted:
    """A batch's rows through suppression, before their alerts are built."""

    emit: list[int] = field(default_factory=list)  # the rows whose alerts go out
    opened: list[Window] = field(default_factory=list)  # the window each of those opened
    closed: list[tuple[PartitionSuppression, Window]] = field(default_factory=list)
    rows: int = 0

    @property
    def suppressed(self) -> int:
        return self.rows - len(self.emit)


class RateCeiling:
    """A token bucket of ``rate`` alerts a second with one second of burst."""

    def __init__(self, rate: float, clock=time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.at = clock()

    def take(self, n: int) -> int:
        """How many of ``n`` alerts may go now."""
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        allowed = min(n, int(self.tokens))
        self.tokens -= allowed
        return allowed


class AlertVolume:
    """Suppression state for each held partition, and the ceiling."""

    def __init__(
        self, window_s: float, by: Iterable[str], detector: str, max_per_second: float = 0.0
    ) -> None:
        self.window_s = window_s
        self.by = tuple(by)
        self.detector = detector
        self.partitions: dict[Stream, PartitionSuppression] = {}
        self.ceiling = RateCeiling(max_per_second) if max_per_second > 0 else None

    @property
    def suppressing(self) -> bool:
        return self.window_s > 0

    def partition(self, stream: Stream) -> PartitionSuppression:
        state = self.partitions.get(stream)
        if state is None:
            state = self.partitions[stream] = PartitionSuppression(
                self.window_s, self.by, self.detector
            )
        return state

    def entities(self) -> int:
        return sum(len(p) for p in self.partitions.values())

    def drop(self, streams: Iterable[Stream]) -> None:
        for s in streams:
            self.partitions.pop(s, None)

    def limit(self, alerts: list[Alert]) -> Passed:
        """A batch's alerts when nothing is suppressed: only the ceiling applies."""
        out = Passed(alerts=list(alerts))
        self._limit(out)
        return out

    def _limit(self, out: Passed) -> None:
        if self.ceiling is not None and out.alerts:
            allowed = self.ceiling.take(len(out.alerts))
            out.dropped = len(out.alerts) - allowed
            del out.alerts[allowed:]

    def admit_records(
        self,
        policy: AlertPolicy,
        coordinates: Sequence[KafkaCoordinates],
        records: Sequence[dict[str, Any]],
        scores: np.ndarray,
        times_ms: np.ndarray | None = None,
    ) -> Admitted:
        """:meth:`admit` for a batch's records over the threshold (in partition order), read
        as ``policy``'s alerts would read them: entity, event time (``times_ms`` when the
        caller has them), score, Kafka coordinates."""
        if times_ms is None:
            times_ms = policy.identity.event_ms(records, [c.timestamp_ms for c in coordinates])
        return self.admit(
            [(c.topic, c.partition) for c in coordinates],
            entities_of(policy.identity, records, self.by, self.detector, policy.labels),
            times_ms.tolist(),
            np.asarray(scores, dtype=np.float64).tolist(),
            coordinates,
        )

    def admit(
        self,
        streams: Sequence[Stream],
        entities: Sequence[tuple[str, dict[str, Any]]],
        times_ms: Sequence[int],
        scores: Sequence[float],
        coordinates: Sequence[KafkaCoordinates],
    ) -> Admitted:
        """Suppression of a batch's would-be alerts from their parts, in partition order,
        before any is built: a storm's held-back alerts are never built nor rendered (the
        worker builds the emitted ones, then :meth:`settle`).  The same as passing each built
        alert through its partition's :meth:`PartitionSuppression.admit` in turn."""
        out = Admitted(rows=len(streams))
        partition = None
        last_stream = None
        for i, (stream, (key, entity), t, score, kafka) in enumerate(
            zip(streams, entities, times_ms, scores, coordinates)
        ):
            if stream != last_stream:
                partition, last_stream = self.partition(stream), stream
            assert partition is not None
            opened, closed = partition.admit_row(key, entity, t, score, kafka)
            if closed:
                out.closed.extend((partition, w) for w in closed)
            if opened is not None:
                out.emit.append(i)
                out.opened.append(opened)
        return out

    def settle(
        self, admitted: Admitted, alerts: Sequence[Alert], stream_times: dict[Stream, int]
    ) -> Passed:
        """The batch's :class:`Passed` once the emitted alerts are built (``alerts[j]`` is the
        alert of row ``admitted.emit[j]``): their windows learn their ids, the partitions' event
        time moves on, the closed windows become summaries, then the ceiling."""
        for w, a in zip(admitted.opened, alerts):
            w.first_id = a.id
        out = Passed(alerts=list(alerts), suppressed=admitted.suppressed)
        out.summaries = [p.summary(w) for p, w in admitted.closed]
        for stream, t in stream_times.items():
            p = self.partition(stream)
            out.summaries.extend(p.summary(w) for w in p.advance_windows(t))
        self._limit(out)
        return out

    def commit(self) -> None:
        for p in self.partitions.values():
            p.commit()

    def rollback(self) -> None:
        for p in self.partitions.values():
            p.rollback()
