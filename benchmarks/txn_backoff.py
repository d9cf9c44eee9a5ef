"""What a transaction costs when the next one begins soon after the last commit, by the
producer's ``retry.backoff.ms``: side by side, in one run, on the local broker.

    python benchmarks/txn_backoff.py --json out.json

The worker's transaction per batch: begin, produce a record, send the consumer's offsets
(AddOffsetsToTxn + TxnOffsetCommit), commit.  ``commit_transaction`` returns once the
coordinator has logged the commit, while it still writes the markers; a transaction that asks
to add the offsets before they are written is answered CONCURRENT_TRANSACTIONS, and librdkafka
retries after ``retry.backoff.ms``.  Each arm (a backoff, a pause between transactions) runs
``--transactions`` transactions on its own producer; the arms alternate ``--repeats`` times and
the medians of each percentile are reported.  The pauses stand for the time a batch spends
between commits (waiting for records, decoding, scoring).
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

from stream_od.config import load_settings  # noqa: E402
from stream_od.kafka import clients  # noqa: E402
from stream_od.kafka.topics import ensure_topics  # noqa: E402


def arm(bootstrap: str, topics: dict[str, str], backoff_ms: int, pause_s: float, n: int) -> dict:
    """``n`` transactions of one record and one offset each; milliseconds per transaction."""
    run = uuid.uuid4().hex[:8]
    settings = load_settings(
        bootstrap_servers=bootstrap,
        group_id=f"txn-backoff-{run}",
        instance_id=run,
        producer={"retry.backoff.ms": backoff_ms},
        metrics_port=0,
    )
    consumer = Consumer(clients.consumer_config(settings))
    producer = Producer(clients.producer_config(settings))
    producer.init_transactions(30)
    metadata = consumer.consumer_group_metadata()
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        producer.begin_transaction()
        producer.produce(topics["out"], b"x" * 200)
        producer.send_offsets_to_transaction(
            [TopicPartition(topics["in"], i % 3, i + 1)], metadata, 30
        )
        producer.commit_transaction(30)
        times.append(time.perf_counter() - t0)
        if pause_s:
            time.sleep(pause_s)
    consumer.close()
    times.sort()
    pct = {q: 1000 * times[min(len(times) - 1, int(q * len(times)))] for q in (0.5, 0.95, 0.99)}
    return {
        "p50_ms": pct[0.5],
        "p95_ms": pct[0.95],
        "p99_ms": pct[0.99],
        "max_ms": 1000 * times[-1],
        "over_50ms": sum(t > 0.05 for t in times),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--backoffs", type=int, nargs="+", default=[100, 10], help="retry.backoff.ms")
    p.add_argument(
        "--pauses-ms", type=float, nargs="+", default=[0, 10, 25], help="between transactions"
    )
    p.add_argument("--transactions", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    run = uuid.uuid4().hex[:8]
    topics = {"in": f"txn-backoff-{run}-in", "out": f"txn-backoff-{run}-out"}
    ensure_topics({"bootstrap.servers": args.bootstrap}, {topics["in"]: 3, topics["out"]: 1})
    arms = [(b, pause) for pause in args.pauses_ms for b in args.backoffs]
    runs: dict[tuple[int, float], list[dict]] = {a: [] for a in arms}
    for r in range(args.repeats):
        for b, pause in arms[r % len(arms) :] + arms[: r % len(arms)]:
            print(f"repeat {r}: retry.backoff.ms {b}, pause {pause:g} ms", file=sys.stderr)
            runs[b, pause].append(arm(args.bootstrap, topics, b, pause / 1000, args.transactions))
    rows = []
    for (b, pause), these in runs.items():
        row: dict = {"retry_backoff_ms": b, "pause_ms": pause}
        row |= {k: statistics.median(x[k] for x in these) for k in these[0]}
        rows.append(row | {"runs": these})
    print(
        f"\n| pause between transactions | retry.backoff.ms | ms per transaction p50 / p95 / p99 "
        f"/ max (median of {args.repeats}) | over 50 ms, of {args.transactions} |"
    )
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['pause_ms']:g} ms | {row['retry_backoff_ms']} | {row['p50_ms']:.1f} / "
            f"{row['p95_ms']:.1f} / {row['p99_ms']:.1f} / {row['max_ms']:.1f} | "
            f"{row['over_50ms']:g} |"
        )
    if args.json:
        config = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps({"config": config, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
