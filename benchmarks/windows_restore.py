"""How long a worker with traffic windows waits to rebuild a partition it takes over: the
records of the partition's tail read back and decoded into the windows (what the worker does
in ``stream_od.kafka.state.StateReader.windows`` before it scores the partition's next
record), for tails of several lengths, three ways side by side: the tail reader's settings
of before 2026-12-07 (librdkafka's fetch wait of 500 ms, a 0.5 s poll), today's
(``stream_od.kafka.clients.STATE_READER``, 50 ms and 0.05 s), and today's with the tail read
twice, backwards to find where it starts and then forwards a chunk at a time, as the worker
reads a tail too large to hold in memory (``stream_od.kafka.tail.KEEP_BYTES``).

    python benchmarks/windows_restore.py --artifact DIR --data ZEEK_LOG --tails 1000 10000 100000 \\
        --json out.json

``--artifact`` has a windowed schema (``zeek-conn-windows``; e.g. ``stream-od train --data
../shared/data/zeek/008-zeek-mixed.conn.log.labeled --schema zeek-conn-windows --detector
mahalanobis --out artifacts/zeek-windows``). For each tail length, a one-partition topic is
written with that many of the log's records as Zeek's JSON writer sends them (re-timed at
``--event-rate`` records a second, so the whole topic lies within the windows' reach and is
read back whole), once without transactions (a sensor's topic) and once in transactions of
``--transaction-records`` (the topic between a windows stage and its scoring stage: its
transaction markers take offsets, so the reader learns it has reached the end by asking for
its position after a poll comes back empty). Then each is rebuilt ``--repeats`` times per
way, the ways rotated; the medians of the read, the decode and the whole are reported, with
records a second.

How long a takeover waits follows from it: the worker rebuilds the partitions it is given one
after another, each from about ``rate x (horizon_s + 3 x lateness_s)`` records (docs/windows.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from stream_throughput import sensor_stream  # noqa: E402

from stream_od.artifact import Artifact  # noqa: E402
from stream_od.kafka import tail, topics  # noqa: E402
from stream_od.records import RecordDecoder  # noqa: E402

# (the reader's consumer settings, its poll, the bytes of a tail held in memory)
SETTINGS = {
    "before 2026-12-07": ({"fetch.wait.max.ms": 500}, 0.5, tail.KEEP_BYTES),
    "now": (dict(tail.STATE_READER), tail.STATE_POLL_S, tail.KEEP_BYTES),
    "now, read again forwards": (dict(tail.STATE_READER), tail.STATE_POLL_S, 0),
}


def write_topic(bootstrap: str, topic: str, values: list[bytes], per_transaction: int) -> None:
    """``values`` on partition 0 of ``topic``; in transactions of ``per_transaction`` (0: none)."""
    config = {"bootstrap.servers": bootstrap, "linger.ms": 20}
    if per_transaction:
        config["transactional.id"] = f"bench-restore-{uuid.uuid4().hex[:8]}"
    producer = Producer(config)
    if per_transaction:
        producer.init_transactions(30)
    step = per_transaction or len(values)
    for start in range(0, len(values), step):
        if per_transaction:
            producer.begin_transaction()
        for v in values[start : start + step]:
            while True:
                try:
                    producer.produce(topic, v, partition=0)
                    break
                except BufferError:
                    producer.poll(0.05)
        if per_transaction:
            producer.commit_transaction(30)
    producer.flush(60)


def settled_end(config: dict, tp: TopicPartition, records: int) -> int:
    """The partition's end once all ``records`` are readable by a reader that skips open
    transactions: a consumer asked for the watermarks right after a topic is written can get
    (0, 0), and a transaction's markers reach the partition a moment after its commit returns
    (a worker is never handed an offset past them: it read the records before committing)."""
    deadline = time.monotonic() + 60
    while True:
        probe = Consumer(config)
        try:
            _, end = probe.get_watermark_offsets(tp, timeout=30)
        finally:
            probe.close()
        at = TopicPartition(tp.topic, tp.partition, end)
        # with a test that finds nothing old: the whole partition
        whole = tail.tail_chunks(config, at, end, lambda _: None)
        if end >= records and sum(map(len, whole)) == records:
            return end
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tp.topic}: its {records} records never became readable")
        time.sleep(0.1)


def rebuild(
    config: dict, artifact: Artifact, tp: TopicPartition, records: int, keep_bytes: int
) -> tuple[float, float]:
    """Seconds to read back the tail of ``tp`` before its offset (``records`` records) and to
    decode it into fresh windows, a chunk at a time as the worker does."""
    decoder = RecordDecoder(artifact.schema, input_format="json")
    stream = (tp.topic, tp.partition)
    read_s = decode_s = 0.0
    got = 0
    t0 = time.perf_counter()
    for values in tail.tail_chunks(
        config, tp, tp.offset, decoder.restore_test, timeout_s=300, keep_bytes=keep_bytes
    ):
        t1 = time.perf_counter()
        decoder.decode(values, streams=[stream] * len(values))
        t2 = time.perf_counter()
        read_s, decode_s, t0 = read_s + t1 - t0, decode_s + t2 - t1, t2
        got += len(values)
    assert got == records, f"read {got} of {records} records"
    return read_s, decode_s


def with_settings(name: str) -> int:
    """The tail reader's module settings for one arm (the reader reads them at each call);
    returns the arm's ``keep_bytes``."""
    reader, poll, keep_bytes = SETTINGS[name]
    tail.STATE_READER, tail.STATE_POLL_S = reader, poll
    return keep_bytes


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True, help="an artifact with a windowed schema")
    p.add_argument("--data", nargs="+", required=True, help="Zeek conn logs")
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--tails", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--event-rate", type=float, default=1_000.0)
    p.add_argument("--transaction-records", type=int, default=1_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    artifact = Artifact.load(args.artifact)
    if artifact.schema.windows is None:
        p.error(f"{args.artifact}: schema {artifact.schema.name!r} has no traffic windows")
    client = {"bootstrap.servers": args.bootstrap}
    config = {**client, "group.id": f"bench-windows-restore-{uuid.uuid4().hex[:8]}"}
    values = sensor_stream(args.data, artifact, max(args.tails), args.event_rate)
    results = []
    for n in args.tails:
        for layout, per_txn in (("plain", 0), ("transactions", args.transaction_records)):
            topic = f"bench-tail-{uuid.uuid4().hex[:8]}"
            topics.ensure_topics(client, {topic: 1})
            write_topic(args.bootstrap, topic, values[:n], per_txn)
            tp = TopicPartition(topic, 0)
            # the end a worker would be given: the committed offset past the last record
            end = settled_end(config, tp, n)
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in SETTINGS}
            names = list(SETTINGS)
            for r in range(args.repeats):
                k = r % len(names)
                for name in names[k:] + names[:k]:  # rotated: none always first
                    keep_bytes = with_settings(name)
                    at = TopicPartition(topic, 0, end)
                    runs[name].append(rebuild(config, artifact, at, n, keep_bytes))
            with_settings("now")
            for name, times in runs.items():
                read = statistics.median(t[0] for t in times)
                decode = statistics.median(t[1] for t in times)
                whole = statistics.median(t[0] + t[1] for t in times)
                results.append(
                    {
                        "records": n,
                        "topic": layout,
                        "reader": name,
                        "read_s": read,
                        "decode_s": decode,
                        "total_s": whole,
                        "records_per_s": n / whole,
                        "runs": times,
                    }
                )
                print(f"{n:,} records, {layout}, {name}: {whole:.2f} s", file=sys.stderr)
            topics.delete_topics(client, [topic])

    print(
        f"\n| tail records | topic | reader | read, s | decode, s | total, s | records/s |"
        f"  (median of {args.repeats})\n|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['records']:,} | {r['topic']} | {r['reader']} | {r['read_s']:.2f} | "
            f"{r['decode_s']:.2f} | {r['total_s']:.2f} | {r['records_per_s']:,.0f} |"
        )
    if args.json:
        meta = {"artifact": args.artifact, "schema": artifact.schema.name, "repeats": args.repeats}
        meta |= {"event_rate": args.event_rate, "transaction_records": args.transaction_records}
        Path(args.json).write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
