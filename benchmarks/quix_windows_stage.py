"""The originator-windows stage written on Quix Streams, for ``benchmarks/windows_pipeline.py
--quix-python``: the engine the issue asks to weigh against the worker's own loop.

    QUIX_PYTHON benchmarks/quix_windows_stage.py --bootstrap HOST:PORT --input SENSOR_TOPIC \
        --output INTERNAL_TOPIC --count N --group GROUP --state-dir DIR

Runs in an environment with ``quixstreams`` installed (its own confluent-kafka pin differs from
stream-od's, hence a separate interpreter), and imports nothing of stream-od.  The stage is what
Quix's documentation shows for per-key state: a stateful ``apply`` (state kept per message key,
the originator's address, in Quix's RocksDB store with a changelog topic), exactly-once, then
``to_topic`` keyed by responder address.  The window definitions are stream-od's (the time
window of ``--time-s`` seconds and the last ``--window`` connections within ``--horizon-s``,
arrival order, five numbers each: docs/windows.md), written the way a per-key state store
invites: the key's connections as a list in the state, the counts recomputed from it.
Prints one JSON line: records, seconds from the first record to the ``--count``-th, rate.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

SERROR = {"S0", "S1", "S2", "S3"}
REJECTED = {"REJ"}


def _key(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def window_features(entries: list, srv: str, peer: str) -> list[float]:
    n = len(entries)
    return [
        math.log1p(n),
        sum(e[3] for e in entries) / n,
        sum(e[4] for e in entries) / n,
        sum(e[1] == srv for e in entries) / n,
        1.0 - sum(e[2] == peer for e in entries) / n,
    ]


def main() -> int:
    from quixstreams import Application

    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--time-s", type=float, default=2.0)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--horizon-s", type=float, default=3600.0)
    args = p.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    source = app.topic(args.input, value_deserializer="json", key_deserializer="string")
    target = app.topic(args.output, value_serializer="json", key_serializer="string")
    progress = {"n": 0, "t0": 0.0, "t1": 0.0}

    def windows(value: dict, state) -> dict:
        ts = value.get("ts")
        ts = float(ts) if isinstance(ts, (int, float)) else 0.0
        srv = f"{_key(value.get('proto'))}/{_key(value.get('id.resp_p'))}"
        peer = _key(value.get("id.resp_h"))
        state_ = value.get("conn_state")
        entry = [ts, srv, peer, state_ in SERROR, state_ in REJECTED]
        recent = state.get("recent", [])
        timed = state.get("time", [])
        timed.append(entry)
        while timed and timed[0][0] < ts - args.time_s:
            timed.pop(0)
        recent.append(entry)
        if len(recent) > args.window:
            recent.pop(0)
        while recent and recent[0][0] < ts - args.horizon_s:
            recent.pop(0)
        state.set("time", timed)
        state.set("recent", recent)
        values = window_features(timed, srv, peer) + window_features(recent, srv, peer)
        own = dict(value.get("_stream_od") or {})
        own["windows"] = {**own.get("windows", {}), "src": values}
        return {**value, "_stream_od": own}

    def count(value: dict) -> None:
        if progress["n"] == 0:
            progress["t0"] = time.perf_counter()
        progress["n"] += 1
        if progress["n"] >= args.count:
            progress["t1"] = time.perf_counter()
            app.stop()

    sdf = app.dataframe(source)
    sdf = sdf.apply(windows, stateful=True)
    sdf = sdf.to_topic(target, key=lambda value: _key(value.get("id.resp_h")))
    sdf.update(count)
    app.run()
    seconds = (progress["t1"] or time.perf_counter()) - progress["t0"]
    print(
        json.dumps(
            {
                "records": progress["n"],
                "seconds": seconds,
                "rps": (progress["n"] - 1) / max(seconds, 1e-9),
            }
        ),
        flush=True,
    )
    return 0 if progress["n"] >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
