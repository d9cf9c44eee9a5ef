"""Suppression before the alerts are built (``AlertVolume.admit`` + ``settle``, what the
worker does) against building every alert and passing it through its partition's
``PartitionSuppression.admit`` one by one: the same alerts out, the same summaries, the same
changelog, batch after batch (pure logic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream_od.alerts import Origin
from stream_od.alerts.volume import AlertVolume, Passed
from tests.alerts.test_policy import zeek_policy
from tests.alerts.test_real_records import json_lines

FIXTURES = Path(__file__).parents[1] / "fixtures" / "logs"


def zeek_records() -> list[dict]:
    """The labelled fixture's records five times over, each pass a second later in ``ts``
    (so the 2 s windows below both hold alerts back and close)."""
    once = json_lines(FIXTURES / "zeek-conn-labeled.json")
    return [{**r, "ts": r["ts"] + k} for k in range(5) for r in once]


def built_then_passed(volume, pol, origins, records, scores, X, contrib, times):
    """Every alert built, then passed one by one through its partition's state (the worker
    before 2026-12-07)."""
    out = Passed()
    for o, a in zip(origins, pol.facts(origins, records, scores, X, contrib, 7)):
        emit, closed = volume.partition((o.topic, o.partition)).admit(a)
        out.summaries += closed
        if emit:
            out.alerts.append(a)
        else:
            out.suppressed += 1
    for stream, t in times.items():
        out.summaries += volume.partition(stream).advance(t)
    return out


def admitted_then_built(volume, pol, origins, records, scores, X, contrib, times):
    admitted = volume.admit_records(pol, pol.coordinates(origins), records, scores)
    e = admitted.emit
    facts = pol.facts(
        [origins[j] for j in e], [records[j] for j in e], scores[e], X[e], contrib[e], 7
    )
    return volume.settle(admitted, facts, times)


@pytest.mark.parametrize(
    "by",
    [
        ("label", "destination_ip"),
        ("source_ip",),
        ("destination_ip",),
        ("destination_ip", "destination_port"),
        ("community_id",),
        ("proto", "id.resp_p"),
        (),
    ],
)
def test_suppressing_before_building_gives_what_building_every_alert_gives(by):
    records = zeek_records()
    assert len(records) == 200
    rng = np.random.default_rng(3)
    pol = zeek_policy()
    old, new = AlertVolume(2.0, by, "vaegmm"), AlertVolume(2.0, by, "vaegmm")
    t0 = int(min(r["ts"] for r in records) * 1000)
    held = summarised = 0
    for start in range(0, len(records), 23):  # batches, two partitions, in partition order
        batch = records[start : start + 23]
        n = len(batch)
        origins = [
            Origin("in", p, start + i, t0 + start + i, None if i % 3 else b"k")
            for p in (0, 1)
            for i in range(n)
            if i % 2 == p
        ]
        ordered = [batch[o.offset - start] for o in origins]
        scores = 1.0 + rng.exponential(4.0, n)
        X, contrib = rng.normal(size=(n, 2)), rng.exponential(size=(n, 2))
        times = {("in", p): int(max(r["ts"] for r in ordered) * 1000) for p in (0, 1)}
        args = (origins, ordered, scores, X, contrib, times)
        a = built_then_passed(old, pol, *args)
        b = admitted_then_built(new, pol, *args)
        assert [pol.render(x) for x in a.alerts] == [pol.render(x) for x in b.alerts]
        assert [pol.render(x) for x in a.summaries] == [pol.render(x) for x in b.summaries]
        assert (a.suppressed, a.dropped) == (b.suppressed, b.dropped)
        held += a.suppressed
        summarised += len(a.summaries)
        for stream, state in old.partitions.items():
            assert state.changes() == new.partitions[stream].changes()
            state.commit()
            new.partitions[stream].commit()
    assert held > 0 and summarised > 0  # it saw alerts held back and windows closed
