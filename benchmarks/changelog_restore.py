"""How long a worker taking partitions over waits to read their suppression state back, three
ways side by side on the same changelog: as before 2026-12-07 (one consumer a partition,
librdkafka's fetch wait of 500 ms and a 0.5 s poll: the old reader, kept here), one consumer a
partition with today's reader settings (``read_changelog`` each), and today's worker (one
consumer for all of them, ``read_changelogs``).

    python benchmarks/changelog_restore.py --partitions 3 12 --json out.json

For each partition count, a compacted changelog topic is written as the worker writes it (in
transactions: ``--windows`` open windows a partition, a few closed ones as tombstones, the
stream time), then read back both ways ``--repeats`` times, in alternating order; the
median seconds per way are reported, with their ratio.  The broker is the local one
(``make kafka-up``); the reads are what the worker does in its assignment callback, before
its first batch of the partitions it was given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_od.kafka import topics  # noqa: E402
from stream_od.kafka.changelog import read_changelog, read_changelogs  # noqa: E402


def read_changelog_before(
    config: dict, topic: str, partition: int, *, timeout_s: float
) -> list[tuple[str, bytes | None]]:
    """The reader of stream_od/kafka/changelog.py before 2026-12-07, as it was."""
    consumer = Consumer(
        {
            **config,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    out: list[tuple[str, bytes | None]] = []
    deadline = time.monotonic() + timeout_s
    try:
        consumer.assign([TopicPartition(topic, partition, -2)])
        while True:
            for msg in consumer.consume(num_messages=1_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return out
                    raise KafkaException(err)
                key = msg.key()
                out.append(("" if key is None else key.decode("utf-8", "replace"), msg.value()))
            if time.monotonic() > deadline:
                raise TimeoutError(topic)
    finally:
        consumer.close()


def write_changelog(bootstrap: str, topic: str, partitions: int, windows: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"b-{uuid.uuid4()}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for p in range(partitions):
        for w in range(windows):
            entity = orjson.dumps({"detector": "vaegmm", "destination_ip": f"10.0.{p}.{w % 250}"})
            value = {"first_ms": w, "last_ms": w, "count": 3, "max_score": 9.5, "first_id": "x"}
            producer.produce(topic, orjson.dumps(value), key=entity, partition=p)
        producer.produce(topic, None, key=b"closed", partition=p)
        producer.produce(topic, b"1796220000000", key=b"\0stream_time", partition=p)
    producer.commit_transaction(30)


BEFORE = "before 2026-12-07"
EACH = "one consumer a partition"
TOGETHER = "one consumer (the worker now)"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--partitions", type=int, nargs="+", default=[3, 12])
    p.add_argument("--windows", type=int, default=200, help="open windows a partition")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    client = {"bootstrap.servers": args.bootstrap}
    results = []
    for n in args.partitions:
        topic = f"bench-changelog-{uuid.uuid4().hex[:8]}"
        topics.ensure_topics(client, {topic: n}, config={"cleanup.policy": "compact"})
        write_changelog(args.bootstrap, topic, n, args.windows)
        config = {**client, "group.id": f"bench-restore-{uuid.uuid4().hex[:8]}"}

        def before(config=config, topic=topic, n=n) -> list:
            return [read_changelog_before(config, topic, q, timeout_s=60) for q in range(n)]

        def each(config=config, topic=topic, n=n) -> list:
            return [read_changelog(config, topic, q, timeout_s=60) for q in range(n)]

        def together(config=config, topic=topic, n=n) -> list:
            entries = read_changelogs(config, topic, range(n), timeout_s=60)
            return [entries[q] for q in range(n)]

        ways = [(BEFORE, before), (EACH, each), (TOGETHER, together)]
        times: dict[str, list[float]] = {name: [] for name, _ in ways}
        for r in range(args.repeats):
            for name, read in ways[r % 3 :] + ways[: r % 3]:  # rotated: none always first
                t0 = time.perf_counter()
                entries = read()
                times[name].append(time.perf_counter() - t0)
                assert entries == before(), f"{name} read other entries"
        medians = {k: statistics.median(v) for k, v in times.items()}
        results.append(
            {
                "partitions": n,
                "entries_per_partition": args.windows + 2,
                "seconds": medians,
                "runs": times,
                "ratio": medians[BEFORE] / medians[TOGETHER],
            }
        )
        print(f"{n} partitions: {medians}", file=sys.stderr)
        topics.delete_topics(client, [topic])

    print(
        f"\n| partitions | {BEFORE}, s | {EACH}, s | {TOGETHER}, s | before / now |"
        f"  (median of {args.repeats})\n|---|---|---|---|---|"
    )
    for r in results:
        s = r["seconds"]
        print(
            f"| {r['partitions']} | {s[BEFORE]:.2f} | {s[EACH]:.2f} | {s[TOGETHER]:.2f} | "
            f"{r['ratio']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"repeats": args.repeats, "windows": args.windows, "results": results}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
