"""Alert volume control: suppression per entity, then a per-worker ceiling on alerts/s.

:mod:`stream_od.alerts.suppression` keeps one partition's state; this module keeps one per
input partition the worker holds, passes a batch's alerts through them in order, and applies
the ceiling to what is left.  The ceiling is the one part that is not deterministic (it
counts wall-clock seconds): it is a last resort against a flood, off by default, and every
alert it drops is counted in ``stream_od_alerts_dropped_total{reason="rate_limit"}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from stream_od.alerts.facts import Alert
from stream_od.alerts.suppression import PartitionSuppression

Stream = tuple[str, int]  # an input partition: (topic, partition)


@dataclass
class Passed:
    """What a batch's alerts became."""

    alerts: list[Alert] = field(default_factory=list)  # to emit
    summaries: list[Alert] = field(default_factory=list)  # closed windows (facts incomplete)
    suppressed: int = 0
    dropped: int = 0


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

    def pass_batch(
        self, alerts: list[tuple[Stream, Alert]], stream_times: dict[Stream, int]
    ) -> Passed:
        """``alerts`` (with their partition) in partition order, and each partition's newest
        event time in the batch."""
        out = Passed()
        if self.suppressing:
            for stream, alert in alerts:
                emit, closed = self.partition(stream).admit(alert)
                out.summaries.extend(closed)
                if emit:
                    out.alerts.append(alert)
                else:
                    out.suppressed += 1
            for stream, t in stream_times.items():
                out.summaries.extend(self.partition(stream).advance(t))
        else:
            out.alerts = [a for _, a in alerts]
        if self.ceiling is not None and out.alerts:
            allowed = self.ceiling.take(len(out.alerts))
            out.dropped = len(out.alerts) - allowed
            del out.alerts[allowed:]
        return out

    def commit(self) -> None:
        for p in self.partitions.values():
            p.commit()

    def rollback(self) -> None:
        for p in self.partitions.values():
            p.rollback()
