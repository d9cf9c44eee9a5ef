"""``stream-od replay``: a load generator that produces KDD Cup '99 records to a Kafka topic.

Records are drawn with the detector's seeded batch sampler (``--attack-ratio`` percent attacks,
the rest normal), encoded as JSON objects (the 41 named fields) or raw KDD CSV lines, keyed by
their sequence number, and carry their label and sequence number in headers (``label``,
``seq``) so that a consumer can grade alerts without the label ever reaching the model.
``--rate`` paces the stream (records per second); without it the producer goes as fast as it
can.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

LABEL_HEADER = "label"
SEQ_HEADER = "seq"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="produce KDD records to a Kafka topic (load generator)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="KDD Cup '99 file (gzip or plain)")
    p.add_argument("--topic", required=True)
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    p.add_argument("--rate", type=float, default=None, help="records per second (default: max)")
    p.add_argument("--attack-ratio", type=float, default=5.0, help="percent attacks (default 5)")
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


@dataclass(frozen=True)
class Encoded:
    """A sampled stream, ready to produce: values, keys and labels in send order."""

    values: list[bytes]
    labels: np.ndarray  # attack name per record ("normal" for normal traffic)

    def __len__(self) -> int:
        return len(self.values)


def sample_stream(data_path: str, *, count: int, attack_ratio: float, seed: int,
                  fmt: str) -> Encoded:
    """Draw ``count`` records with the reference sampler and encode them."""
    import orjson

    from stream_od.schema import KDD_COLUMNS
    from trainer.data import Batch, create_outlier_batch, load_records

    df = load_records(data_path)
    # The sampler draws rows of a Batch; give it the row numbers as the only "feature" so the
    # same seeded procedure picks which file rows to replay.
    index = Batch(X=np.arange(len(df), dtype=np.float64)[:, None],
                  y=df["target"].to_numpy(np.int64), attack=df["attack"].to_numpy(object),
                  feature_names=("row",))
    drawn = create_outlier_batch(index, count, attack_ratio, seed=seed)
    rows = df.iloc[drawn.X[:, 0].astype(np.int64)]
    if fmt == "csv":
        text = rows.loc[:, list(KDD_COLUMNS)].to_csv(header=False, index=False,
                                                      lineterminator="\n")
        values = [line.encode() for line in text.splitlines()]
    else:
        records = rows.loc[:, list(KDD_COLUMNS)].to_dict("records")
        values = [orjson.dumps(r) for r in records]
    return Encoded(values=values, labels=drawn.attack)


def produce(stream: Encoded, *, topic: str, bootstrap_servers: str, rate: float | None = None,
            progress: bool = False, start_seq: int = 0) -> int:
    """Produce the stream (keys and ``seq`` are ``start_seq + i``); returns records sent."""
    from confluent_kafka import KafkaException, Producer
    from tqdm import tqdm

    failures: list[str] = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True,
                         "linger.ms": 5, "compression.type": "lz4",
                         "queue.buffering.max.messages": 200_000})
    bar = tqdm(total=len(stream), unit="rec", disable=not progress, file=sys.stderr)
    t0 = time.perf_counter()
    for i, (value, label) in enumerate(zip(stream.values, stream.labels)):
        if rate:
            ahead = (i / rate) - (time.perf_counter() - t0)
            if ahead > 0.002:
                producer.poll(0)
                time.sleep(ahead)
        seq = str(start_seq + i).encode()
        while True:
            try:
                producer.produce(topic, value=value, key=seq, on_delivery=on_delivery,
                                 headers=[(LABEL_HEADER, str(label).encode()), (SEQ_HEADER, seq)])
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 999:
            producer.poll(0)
            bar.update(1000)
    remaining = producer.flush(60)
    bar.update(len(stream) - bar.n)
    bar.close()
    if remaining or failures:
        raise KafkaException(f"{remaining} records unsent, {len(failures)} failed "
                             f"(first: {failures[:1]})")
    return len(stream)


def _run(args: argparse.Namespace) -> int:
    if args.count < 1:
        print("stream-od replay: --count must be >= 1", file=sys.stderr)
        return 2
    if args.rate is not None and args.rate <= 0:
        print("stream-od replay: --rate must be > 0", file=sys.stderr)
        return 2
    stream = sample_stream(args.data, count=args.count, attack_ratio=args.attack_ratio,
                           seed=args.seed, fmt=args.format)
    t0 = time.perf_counter()
    sent = produce(stream, topic=args.topic, bootstrap_servers=args.bootstrap_servers,
                   rate=args.rate, progress=not args.quiet)
    took = time.perf_counter() - t0
    attacks = int((stream.labels != "normal").sum())
    print(f"replay: {sent} records ({attacks} attacks) to {args.topic} in {took:.1f} s "
          f"({sent / took:,.0f} rec/s)", file=sys.stderr)
    return 0
