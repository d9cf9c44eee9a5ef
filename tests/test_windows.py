"""Traffic-window features (stream_od.windows): each definition on hand-made connections, the
arrival-order semantics with out-of-order event times, forgetting, and that the values depend
on the records alone (not on batch boundaries, sweeps or the decoder that computes them)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_od import windows as windows_module
from stream_od.features import fit_schema
from stream_od.records import RecordDecoder, field_values, path_values
from stream_od.schema import FeatureSchema, SchemaError, load_schema
from stream_od.schema.windows import FEATURES, WindowSpec
from stream_od.windows import TrafficWindows

SPEC = load_schema("zeek-conn-windows").windows
assert SPEC is not None


def conn(ts, src="10.0.0.1", dst="10.0.0.2", port=80, state="SF", proto="tcp") -> dict:
    return {
        "ts": ts,
        "id.orig_h": src,
        "id.resp_h": dst,
        "id.resp_p": port,
        "proto": proto,
        "conn_state": state,
    }


def full(record: dict) -> dict:
    """A connection with every zeek-conn field, so that a schema can be fitted on it."""
    counts = (
        "duration",
        "orig_bytes",
        "resp_bytes",
        "missed_bytes",
        "orig_pkts",
        "orig_ip_bytes",
        "resp_pkts",
        "resp_ip_bytes",
    )
    return {
        **{c: 1 for c in counts},
        "service": "http",
        "history": "ShADadFf",
        "local_orig": True,
        "local_resp": False,
        **record,
    }


def run(
    records: list[dict],
    spec: WindowSpec = SPEC,
    batch: int | None = None,
    windows: TrafficWindows | None = None,
) -> dict[str, np.ndarray]:
    """Window features of ``records`` in order, by column name."""
    windows = windows or TrafficWindows(spec, "ts")
    batch = batch or max(len(records), 1)
    parts = []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        parts.append(
            windows.features({p: path_values(chunk, p) for p in windows.paths}, len(chunk))
        )
    X = np.concatenate(parts) if parts else np.empty((0, len(spec.columns)))
    return dict(zip(spec.columns, X.T))


def test_a_port_sweep_shows_in_the_source_windows_and_not_in_the_destination_ones():
    sweep = [conn(100 + i * 0.01, dst=f"10.0.1.{i}", port=1000 + i, state="S0") for i in range(50)]
    f = run(sweep)
    last = -1
    assert f["win.src.count"][last] == pytest.approx(math.log1p(50))  # 50 in 0.49 s
    assert f["win.src.serror_rate"][last] == 1.0
    assert f["win.src.diff_peer_rate"][last] == pytest.approx(49 / 50)
    assert f["win.src.same_srv_rate"][last] == pytest.approx(1 / 50)
    assert f["win.dst.count"][last] == pytest.approx(math.log1p(1))  # each target saw one
    assert f["win.dst.diff_peer_rate"][last] == 0.0


def test_a_flood_shows_in_the_destination_windows():
    flood = [
        conn(100 + i * 0.001, src=f"172.16.{i // 250}.{i % 250}", state="REJ") for i in range(300)
    ]
    f = run(flood)
    assert f["win.dst.rerror_rate"][-1] == 1.0
    assert f["win.dst.diff_peer_rate"][-1] == pytest.approx(299 / 300)
    assert f["win.dst.n_count"][-1] == pytest.approx(math.log1p(SPEC.count))  # capped at 100
    assert f["win.dst.same_srv_rate"][-1] == 1.0


def test_the_time_window_keeps_the_last_time_s_seconds_and_the_connection_window_count():
    records = [conn(float(t)) for t in range(10)]  # one a second, same host pair
    f = run(records)
    # at t=9: connections started at 7, 8, 9 are within 2 s (7 >= 9 - 2)
    assert f["win.src.count"][-1] == pytest.approx(math.log1p(3))
    assert f["win.src.n_count"][-1] == pytest.approx(math.log1p(10))


def test_the_connection_window_forgets_beyond_its_horizon():
    spec = WindowSpec(
        roles=SPEC.roles,
        serror=SPEC.serror,
        rerror=SPEC.rerror,
        horizon_s=60.0,
        time_s=2.0,
        count=100,
    )
    f = run([conn(0.0), conn(30.0), conn(100.0)], spec)
    assert f["win.src.n_count"].tolist() == pytest.approx(
        [math.log1p(1), math.log1p(2), math.log1p(1)]
    )


def test_out_of_order_event_times_join_in_arrival_order():
    """Zeek writes a connection when it ends: a long one that started earlier arrives after
    short ones.  It joins with its own ts; the ones it arrived after stay in the window (they
    started later than it, not more than time_s before it)."""
    f = run([conn(10.0), conn(10.5), conn(9.0, state="S0")])
    assert f["win.src.count"][-1] == pytest.approx(math.log1p(3))
    assert f["win.src.serror_rate"][-1] == pytest.approx(1 / 3)
    # and a connection leaves the window, oldest arrival first, once it started more than
    # time_s before one being added
    g = run([conn(9.0), conn(10.0), conn(12.5)])
    assert g["win.src.count"][-1] == pytest.approx(math.log1p(1))


def test_a_key_is_forgotten_past_the_windows_reach_and_its_late_record_counted():
    spec = WindowSpec(
        roles=SPEC.roles,
        serror=SPEC.serror,
        rerror=SPEC.rerror,
        horizon_s=60.0,
        time_s=2.0,
        count=100,
    )
    windows = TrafficWindows(spec, "ts")
    run([conn(0.0, src="a"), conn(1.0, src="a"), conn(200.0, src="b")], spec, windows=windows)
    assert windows.sweep() == 1  # source "a": newest 1.0, older than 60 s before 200
    assert windows.keys_held == 2  # source "b", and the destination they share
    f = run([conn(1.5, src="a")], spec, windows=windows)  # 198.5 s late: its key is gone
    assert f["win.src.count"][0] == pytest.approx(math.log1p(1))
    assert f["win.dst.count"][0] == pytest.approx(math.log1p(2))  # 200.0 is not after 1.5 + 2
    assert windows.late_records == 1 and windows.take_late() == 1 and windows.take_late() == 0


def test_a_record_without_an_address_gets_a_window_of_its_own():
    f = run([conn(1.0), {**conn(1.1, state="S0"), "id.orig_h": None}])
    assert f["win.src.count"][-1] == pytest.approx(math.log1p(1))
    assert f["win.src.serror_rate"][-1] == 1.0
    assert f["win.dst.count"][-1] == pytest.approx(math.log1p(2))  # its destination is known


def test_a_record_without_a_time_counts_as_the_latest_seen():
    f = run([conn(50.0), {k: v for k, v in conn(None).items() if k != "ts"}])
    assert f["win.src.count"][-1] == pytest.approx(math.log1p(2))


@pytest.mark.parametrize("bad", [1e300, 1.7e15, 1_700_000_000_000_000])
def test_a_time_no_capture_can_have_does_not_make_the_other_keys_forgotten(bad):
    """One record timed 1e300 (or in microseconds) used to become the partition's latest time:
    every other key then looked forgotten on each record, its windows holding that record
    alone.  It counts as no time (the latest seen), and the windows go on."""
    spec = WindowSpec(
        roles=SPEC.roles, serror=SPEC.serror, rerror=SPEC.rerror, horizon_s=60.0, time_s=2.0
    )
    windows = TrafficWindows(spec, "ts")
    records = [conn(100.0), conn(100.5, src="odd", dst="odd"), conn(101.0), conn(101.5)]
    records[1]["ts"] = bad
    f = run(records, spec, windows=windows)
    assert f["win.src.count"][-1] == pytest.approx(math.log1p(3))  # 100.0, 101.0, 101.5
    assert windows.late_records == 0 and windows.watermark == 101.5


connections = st.lists(
    st.tuples(
        st.floats(0, 30, allow_nan=False),
        st.sampled_from("abcd"),
        st.sampled_from("wxyz"),
        st.sampled_from([22, 80, 443]),
        st.sampled_from(["SF", "S0", "REJ"]),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(connections, st.integers(1, 50), st.integers(1, 7))
def test_values_do_not_depend_on_batches_or_sweeps(conns, batch, sweep_every):
    records = [conn(ts, src=s, dst=d, port=p, state=c) for ts, s, d, p, c in conns]
    spec = WindowSpec(
        roles=SPEC.roles,
        serror=SPEC.serror,
        rerror=SPEC.rerror,
        time_s=2.0,
        count=5,
        horizon_s=10.0,
    )
    whole = run(records, spec)
    old = windows_module._SWEEP_EVERY
    windows_module._SWEEP_EVERY = sweep_every
    try:
        parts = run(records, spec, batch=batch)
    finally:
        windows_module._SWEEP_EVERY = old
    for name in spec.columns:
        np.testing.assert_array_equal(whole[name], parts[name], err_msg=name)


@settings(max_examples=40, deadline=None)
@given(connections)
def test_the_rates_are_rates_and_the_counts_at_least_one(conns):
    records = [conn(ts, src=s, dst=d, port=p, state=c) for ts, s, d, p, c in conns]
    f = run(records)
    for name, col in f.items():
        if name.endswith("count"):
            assert (col >= math.log1p(1) - 1e-12).all(), name
        else:
            assert ((col >= 0) & (col <= 1)).all(), name


def test_the_decoder_computes_what_the_trainer_does_across_batches():
    """The worker's decode (bytes, batch by batch) and encode_records (the trainer's path,
    all at once) give the same matrix."""
    rng = np.random.default_rng(1)
    records = [
        full(
            conn(
                float(t),
                src=f"h{rng.integers(5)}",
                dst=f"s{rng.integers(3)}",
                state=str(rng.choice(["SF", "S0", "REJ"])),
            )
        )
        for t in np.sort(rng.uniform(0, 60, 400))
    ]
    schema = load_schema("zeek-conn-windows")
    schema = fit_schema(schema, field_values(records, schema))
    offline = RecordDecoder(schema).encode_records(records).X
    decoder = RecordDecoder(schema)
    values = [orjson.dumps(r) for r in records]
    online = np.concatenate([decoder.decode(values[i : i + 37]).X for i in range(0, 400, 37)])
    np.testing.assert_array_equal(offline, online)
    assert offline.shape[1] == len(schema.feature_names) == len(schema.field_columns) + 20


def test_a_rejected_record_does_not_join_the_windows():
    schema = load_schema("zeek-conn-windows")
    good = [full(conn(1.0)), full(conn(1.1))]
    schema = fit_schema(schema, field_values(good, schema))
    decoder = RecordDecoder(schema)
    out = decoder.decode(
        [
            orjson.dumps(good[0]),
            orjson.dumps({**full(conn(1.05)), "duration": "x"}),
            orjson.dumps(good[1]),
        ]
    )
    assert [r.index for r in out.rejected] == [1]
    count = schema.feature_names.index("win.src.count")
    assert out.X[-1, count] == pytest.approx(math.log1p(2))


def test_window_schema_round_trips_and_explains_its_mistakes():
    schema = load_schema("zeek-conn-windows")
    again = FeatureSchema.from_dict(orjson.loads(orjson.dumps(schema.to_dict())))
    assert again == schema and again.windows == schema.windows
    assert len(schema.windows.columns) == 2 * len(FEATURES)
    d = schema.to_dict()
    with pytest.raises(SchemaError, match="time_field"):
        FeatureSchema.from_dict({**d, "time_field": None})
    with pytest.raises(SchemaError, match="unknown key"):
        FeatureSchema.from_dict({**d, "windows": {**d["windows"], "size": 3}})
    with pytest.raises(SchemaError, match="count"):
        FeatureSchema.from_dict({**d, "windows": {**d["windows"], "count": 0}})
    with pytest.raises(SchemaError, match="role"):
        FeatureSchema.from_dict({**d, "windows": {**d["windows"], "roles": [{"name": "x"}]}})


def test_a_user_schema_extends_a_built_in_one(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'extends = "zeek-conn-windows"\nname = "mine"\n'
        '[[fields]]\nname = "missed_bytes"\npath = "missed_bytes"\n'
        'missing = "default"\ndefault = 0\n',
        encoding="utf-8",
    )
    with pytest.raises(SchemaError, match="duplicate"):
        load_schema(path)
    path.write_text(
        'extends = "zeek-conn"\nname = "mine"\n[windows]\n'
        'serror = { field = "conn_state", values = ["S0"] }\n'
        'rerror = { field = "conn_state", values = ["REJ"] }\n'
        '[[windows.roles]]\nname = "src"\nkey = "id.orig_h"\npeer = "id.resp_h"\n',
        encoding="utf-8",
    )
    mine = load_schema(path)
    assert mine.name == "mine" and len(mine.fields) == len(load_schema("zeek-conn").fields)
    assert mine.windows.columns[0] == "win.src.count"
    (tmp_path / "bad.toml").write_text('extends = "nope"\n', encoding="utf-8")
    with pytest.raises(SchemaError, match="not a built-in"):
        load_schema(tmp_path / "bad.toml")
