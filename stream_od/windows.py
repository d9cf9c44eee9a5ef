"""Traffic windows: per-host features over time and connection count, computed from the stream.

For each role of the schema's :class:`~stream_od.schema.windows.WindowSpec` (the originator's
address, the responder's address, ...) the records sharing a key form two windows:

- the *time window*: the key's connections that started within ``time_s`` of the current one;
- the *connection window*: the key's last ``count`` connections, none older than ``horizon_s``.

Both include the current connection, so a count is at least 1 and every rate is defined.
From each window come a count and four rates: SYN errors, rejections, the same service as the
current connection, and a different peer (docs/windows.md has the exact definitions and their
KDD Cup '99 counterparts).

Semantics in one sentence: **records join their key's windows in arrival order, each with its
own event time**.  A connection leaves a window, oldest arrival first, once it started more
than the window's length before the connection being added; Zeek writes a connection when it
ends, so its ``ts`` (the start) arrives out of order, which can keep a connection in a window a
little longer, never drops one early.  A key whose newest connection started more than
``max(time_s, horizon_s)`` before the latest event time seen (the watermark) is forgotten,
which bounds the state: a record arriving later than that finds its key's windows empty.

The features are thus a function of the sequence of records alone (no wall clock, no batch
boundaries): the trainer over a file in time order, ``score`` and the worker over the same
records in the same order compute the same values.  State per key demands per-record Python
here; ``benchmarks/windows.py`` measures what it costs.
"""

from __future__ import annotations

import collections
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from stream_od.features import category_key, epoch_seconds, plausible_time
from stream_od.schema.windows import FEATURES, TIME_FEATURES, WindowSpec

_SWEEP_EVERY = 10_000  # records between sweeps of forgotten keys
_LOG1P_ONE = math.log1p(1)


class _Window:
    """Connections in arrival order, with running counts, so each update is O(1) amortised."""

    __slots__ = ("entries", "serror", "rerror", "services", "peers")

    def __init__(self) -> None:
        self.entries: collections.deque[tuple[float, str, str, bool, bool]] = collections.deque()
        self.serror = 0
        self.rerror = 0
        self.services: dict[str, int] = {}
        self.peers: dict[str, int] = {}

    def add(self, entry: tuple[float, str, str, bool, bool]) -> None:
        self.entries.append(entry)
        _, srv, peer, serr, rerr = entry
        self.serror += serr
        self.rerror += rerr
        self.services[srv] = self.services.get(srv, 0) + 1
        self.peers[peer] = self.peers.get(peer, 0) + 1

    def drop_oldest(self) -> None:
        _, srv, peer, serr, rerr = self.entries.popleft()
        self.serror -= serr
        self.rerror -= rerr
        for counts, k in ((self.services, srv), (self.peers, peer)):
            left = counts[k] - 1
            if left:
                counts[k] = left
            else:
                del counts[k]

    def evict_before(self, ts: float) -> None:
        entries = self.entries
        while entries and entries[0][0] < ts:
            self.drop_oldest()

    def features(self, srv: str, peer: str) -> tuple[float, float, float, float, float]:
        """log1p(count), and the rates of SYN errors, rejections, the same service and a
        different peer: the current connection is in the window, so ``n >= 1``."""
        n = len(self.entries)
        return (
            math.log1p(n),
            self.serror / n,
            self.rerror / n,
            self.services.get(srv, 0) / n,
            1.0 - self.peers.get(peer, 0) / n,
        )


def _joined(values: tuple[Any, ...]) -> str:
    """The service of a connection: its service fields' category keys, joined."""
    return "/".join([str(category_key(v)) for v in values])


class _KeyState:
    __slots__ = ("time", "recent", "newest")

    def __init__(self) -> None:
        self.time = _Window()
        self.recent = _Window()
        self.newest = -math.inf


class TrafficWindows:
    """The windows of one stream (one worker's partitions, or one file): stateful, fed the
    records in order by :meth:`features`."""

    def __init__(self, spec: WindowSpec, time_field: str, roles: Sequence[str] | None = None):
        """``roles``: the names of the roles to compute (all of the spec's by default); the
        others come from elsewhere (an upstream stage, :mod:`stream_od.worker`)."""
        self.spec = spec
        self.time_field = time_field
        self.roles = tuple(r for r in spec.roles if roles is None or r.name in roles)
        self.paths = (time_field, *spec.paths)
        self.n_features = len(self.roles) * len(FEATURES)
        self._state: list[dict[str, _KeyState]] = [{} for _ in self.roles]
        self._serror = frozenset(spec.serror.values)
        self._rerror = frozenset(spec.rerror.values)
        self._forget_after = max(spec.time_s, spec.horizon_s)
        self.watermark = -math.inf  # the latest event time seen
        self.late_records = 0  # records that arrived after their key was forgotten
        self._late_taken = 0
        self._since_sweep = 0

    def take_late(self) -> int:
        """Late records since the last call (for a counter metric)."""
        late, self._late_taken = self.late_records - self._late_taken, self.late_records
        return late

    @property
    def keys_held(self) -> int:
        return sum(len(s) for s in self._state)

    def features(self, columns: dict[str, Sequence[Any]], n: int) -> np.ndarray:
        """The ``(n, n_features)`` window features of ``n`` records, given each path's values
        (``columns[path][i]``, ``None`` when absent), and the records joined to the windows."""
        spec = self.spec
        out = np.empty((n, self.n_features))
        times = self._times(columns[self.time_field])
        # Interned: a window holds up to `count` connections per key, most of them sharing a
        # handful of services and peers; one string each instead of one per connection.
        services = list(map(sys.intern, map(_joined, zip(*(columns[p] for p in spec.service)))))
        serrors = list(
            map(self._serror.__contains__, map(category_key, columns[spec.serror.field]))
        )
        rerrors = list(
            map(self._rerror.__contains__, map(category_key, columns[spec.rerror.field]))
        )
        width = len(FEATURES)
        for j, (role, state) in enumerate(zip(self.roles, self._state)):
            keys = list(map(category_key, columns[role.key]))
            peers = list(map(sys.intern, map(str, map(category_key, columns[role.peer]))))
            entries = list(zip(times, services, peers, serrors, rerrors))
            self._role(state, keys, entries, out, j * width)
        if times:
            self.watermark = max(self.watermark, max(times))
        self._since_sweep += n
        if self._since_sweep >= _SWEEP_EVERY:
            self.sweep()
        return out

    def _times(self, values: Sequence[Any]) -> list[float]:
        """Event times in seconds; a record without one takes the watermark (the latest time
        seen before it), so it sorts as "now"."""
        times = []
        wm = self.watermark
        for v in values:
            ts = v if type(v) is float and plausible_time(v) else epoch_seconds(v)
            if ts is None:
                ts = wm if wm > -math.inf else 0.0
            elif ts > wm:
                wm = ts
            times.append(ts)
        return times

    def _role(
        self,
        state: dict[str, _KeyState],
        keys: list[str | None],
        entries: list[tuple[float, str, str, bool, bool]],
        out: np.ndarray,
        at: int,
    ) -> None:
        """One role's features for the batch, the windows updated record by record."""
        spec = self.spec
        time_s, count, horizon_s = spec.time_s, spec.count, spec.horizon_s
        forget = self._forget_after
        wm = self.watermark
        rows: list[tuple[float, ...]] = []
        append = rows.append
        for key, entry in zip(keys, entries):
            ts, srv, peer = entry[0], entry[1], entry[2]
            if ts > wm:
                wm = ts
            if key is None:  # no address: a window of its own
                lone = (_LOG1P_ONE, 1.0 * entry[3], 1.0 * entry[4], 1.0, 0.0)
                append(lone + lone)
                continue
            ks = state.get(key)
            if ks is None or ks.newest < wm - forget:  # new, or forgotten (as if swept)
                if wm - ts > forget:
                    self.late_records += 1
                ks = state[key] = _KeyState()
            if ts > ks.newest:
                ks.newest = ts
            tw, cw = ks.time, ks.recent
            tw.add(entry)
            tw.evict_before(ts - time_s)
            cw.add(entry)
            if len(cw.entries) > count:
                cw.drop_oldest()
            cw.evict_before(ts - horizon_s)
            append(tw.features(srv, peer) + cw.features(srv, peer))
        if rows:
            out[:, at : at + 2 * len(TIME_FEATURES)] = rows

    def sweep(self) -> int:
        """Forget the keys whose newest connection is older than the windows reach; returns
        how many.  Lookups forget such keys too, so sweeping changes no feature value."""
        self._since_sweep = 0
        cutoff = self.watermark - self._forget_after
        gone = 0
        for state in self._state:
            old = [k for k, ks in state.items() if ks.newest < cutoff]
            for k in old:
                del state[k]
            gone += len(old)
        return gone
