"""Suppression per entity in event time: counts, summaries, abort and restore (pure logic)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_od.alerts.facts import Alert, Connection, KafkaCoordinates
from stream_od.alerts.suppression import PartitionSuppression
from stream_od.alerts.volume import AlertVolume, RateCeiling


def alert(i: int, t_ms: int, src: str, score: float = 2.0) -> Alert:
    return Alert(
        id=f"a{i}",
        event_time_ms=t_ms,
        event_time_source="record",
        detected_at_ms=0,
        score=score,
        severity="low",
        risk_score=1.0,
        top_features=[],
        record={},
        connection=Connection(source_ip=src),
        kafka=KafkaCoordinates("in", 0, i, t_ms, None),
    )


def run(state: PartitionSuppression, alerts: list[Alert], stream_time: int | None = None):
    emitted, summaries = [], []
    for a in alerts:
        emit, closed = state.admit(a)
        summaries += closed
        if emit:
            emitted.append(a)
    if stream_time is not None:
        summaries += state.advance(stream_time)
    return emitted, summaries


def test_a_sweep_of_10000_flows_from_one_host_is_one_alert_and_one_summary_per_window():
    state = PartitionSuppression(60.0, ("source_ip",), "vaegmm")
    sweep = [alert(i, 1_000_000 + i * 5, "10.0.0.66", score=2.0 + i % 7) for i in range(10_000)]
    emitted, summaries = run(state, sweep, stream_time=1_000_000 + 10_000 * 5 + 60_000)
    assert len(emitted) == 1 and len(summaries) == 1  # 50 s of sweep, inside one 60 s window
    s = summaries[0].summary
    assert s.count == 9_999 and len(emitted) + s.count == 10_000
    assert (s.first_ms, s.last_ms, s.max_score) == (1_000_000, 1_000_000 + 9_999 * 5, 8.0)
    assert s.entity == {"detector": "vaegmm", "source_ip": "10.0.0.66"}
    assert summaries[0].connection.source_ip == "10.0.0.66" and s.first_alert_id == "a0"


def test_windows_are_per_entity_and_reopen_after_they_end():
    state = PartitionSuppression(10.0, ("source_ip",), "m")
    emitted, summaries = run(
        state,
        [
            alert(0, 0, "a"),
            alert(1, 1_000, "b"),
            alert(2, 2_000, "a"),
            alert(3, 10_000, "a"),
            alert(4, 10_500, "a"),
        ],
    )
    assert [a.id for a in emitted] == ["a0", "a1", "a3"]
    assert [s.summary.count for s in summaries] == [1]  # a's first window closed by a3
    _, later = run(state, [], stream_time=20_500)
    assert sorted(s.summary.first_alert_id for s in later) == ["a3"]  # b held nothing back


def test_an_aborted_batch_is_undone_and_redone_to_the_same_result():
    rng = random.Random(3)
    alerts = [alert(i, i * 700 + rng.randrange(500), rng.choice("abc")) for i in range(300)]
    plain = PartitionSuppression(5.0, ("source_ip",), "m")
    want = [
        run(plain, alerts[k : k + 30], stream_time=alerts[min(k + 29, 299)].event_time_ms)
        for k in range(0, 300, 30)
    ]
    redo = PartitionSuppression(5.0, ("source_ip",), "m")
    for n, k in enumerate(range(0, 300, 30)):
        stream_time = alerts[min(k + 29, 299)].event_time_ms
        if n % 3 == 1:
            run(redo, alerts[k : k + 30], stream_time)
            redo.rollback()
        assert run(redo, alerts[k : k + 30], stream_time) == want[n]
        redo.commit()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50_000), st.sampled_from("abcd")), max_size=120),
    st.integers(1, 40),
)
def test_state_restored_from_the_changelog_continues_as_if_never_stopped(events, cut):
    """Emitted + held back = all alerts; a restart from the changelog changes nothing."""
    alerts = [alert(i, t, src) for i, (t, src) in enumerate(events)]
    batches = [alerts[k : k + cut] for k in range(0, len(alerts), cut)]
    straight = PartitionSuppression(3.0, ("source_ip",), "m")
    resumed = PartitionSuppression(3.0, ("source_ip",), "m")
    log: list = []
    got_straight, got_resumed = [], []
    for n, batch in enumerate(batches):
        clock = max(a.event_time_ms for a in batch)
        got_straight.append(run(straight, batch, clock))
        got_resumed.append(run(resumed, batch, clock))
        log += resumed.changes()
        resumed.commit()
        if n % 2 == 0:  # the worker dies; the next owner reads the changelog back
            resumed = PartitionSuppression(3.0, ("source_ip",), "m")
            resumed.restore(log)
    assert got_resumed == got_straight
    emitted = sum(len(e) for e, _ in got_straight)
    held = sum(s.summary.count for _, ss in got_straight for s in ss)
    open_held = sum(w.count for w in straight.windows.values())
    assert emitted + held + open_held == len(alerts)


def test_the_ceiling_drops_and_counts_the_excess():
    now = [0.0]
    volume = AlertVolume(0.0, ("source_ip",), "m", max_per_second=10)
    volume.ceiling = RateCeiling(10, clock=lambda: now[0])
    passed = volume.limit([alert(i, i, "a") for i in range(25)])
    assert len(passed.alerts) == 10 and passed.dropped == 15
    now[0] = 0.5
    assert len(volume.limit([alert(i, i, "a") for i in range(25)]).alerts) == 5


def test_suppressing_by_a_part_the_schema_cannot_promote_is_refused():
    """KDD records carry no addresses: by source_ip, every alert would be one entity."""
    import pytest

    from stream_od.alerts.suppression import check_suppress_by
    from stream_od.schema import load_schema

    check_suppress_by(["source_ip", "destination_port"], load_schema("zeek-conn"))
    check_suppress_by(["service", "transport"], load_schema("kdd99"))  # a record path, a part
    with pytest.raises(ValueError, match="source_ip.*kdd99"):
        check_suppress_by(["source_ip"], load_schema("kdd99"))
