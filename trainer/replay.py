"""``stream-od replay``: a load generator that produces connection records to a Kafka topic.

Two sources, chosen by what ``--data`` is:

* **Sensor logs** (Zeek TSV or JSON conn logs, Suricata EVE; every file must be one, see
  :func:`trainer.readers.detect_format`): their records in event-time order (Zeek writes a
  connection when it *ends*, so a file is not in ``ts`` order), as the JSON objects a
  Zeek-to-Kafka pipeline would send, without the ground-truth label fields of ``--schema``: the
  exact bytes of :func:`trainer.score.input_values`, so offline and streamed scores agree.
  ``--count`` takes the first N (default: every record).
* **KDD Cup '99**: records drawn with the detector's seeded batch sampler (``--attack-ratio``
  percent attacks, the rest normal), encoded as JSON objects (the 41 named fields) or raw KDD
  CSV lines (``--count``, default 10,000).

Every record is keyed by its sequence number and carries its label in headers (``label``,
``detailed_label`` for sensor logs, ``seq``), so a consumer can grade alerts without the label
ever reaching the model.  ``--rate`` paces the stream (records per second); without it the
producer goes as fast as it can.  The producer takes ``STREAM_OD_KAFKA`` (security settings) as
the workers do.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

LABEL_HEADER = "label"
DETAIL_HEADER = "detailed_label"
SEQ_HEADER = "seq"
KDD_DEFAULT_COUNT = 10_000
DEFAULT_SCHEMA = "zeek-conn"

# Throughput settings a user may override through STREAM_OD_KAFKA.
_PRODUCER_TUNING = {
    "linger.ms": 5,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 200_000,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="produce labelled records to a Kafka topic (load generator)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="FILE",
        help="sensor logs (Zeek TSV/JSON, Suricata EVE), or one KDD Cup '99 file",
    )
    p.add_argument("--topic", required=True)
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    p.add_argument("--rate", type=float, default=None, help="records per second (default: max)")
    p.add_argument(
        "--count",
        type=int,
        default=None,
        help=f"records to send (default: all of a sensor log, {KDD_DEFAULT_COUNT:,} KDD records)",
    )
    p.add_argument(
        "--schema",
        default=DEFAULT_SCHEMA,
        metavar="NAME|TOML",
        help="sensor logs: the schema whose label_fields are kept out of the values "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--attack-ratio", type=float, default=5.0, help="KDD: percent attacks (default 5)"
    )
    p.add_argument("--seed", type=int, default=0, help="KDD: the sampler's seed")
    p.add_argument(
        "--format",
        choices=("json", "csv"),
        default="json",
        help="KDD: JSON objects or raw CSV lines",
    )
    p.add_argument(
        "--key-field",
        metavar="PATH",
        help="key each record by this field (e.g. id.orig_h: a topic keyed by host, "
        "for traffic windows, docs/windows.md); default: its sequence number, "
        "which is always in the seq header",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


@dataclass(frozen=True)
class Encoded:
    """A stream, ready to produce: values and labels in send order (keys are sequence numbers).

    ``details`` (sensor logs only) is the detailed label per record; ``None`` sends no
    ``detailed_label`` header, as for KDD, whose label already names the attack.
    """

    values: list[bytes]
    labels: np.ndarray  # label per record ("normal" for normal KDD traffic)
    details: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)


# --- KDD ----------------------------------------------------------------------------------------


def sample_stream(
    data_path: str, *, count: int, attack_ratio: float, seed: int, fmt: str
) -> Encoded:
    """Draw ``count`` records with the reference sampler and encode them."""
    from stream_od.schema import KDD_COLUMNS
    from trainer.data import Batch, create_outlier_batch, load_records
    from trainer.score import json_bytes

    df = load_records(data_path)
    # The sampler draws rows of a Batch; give it the row numbers as the only "feature" so the
    # same seeded procedure picks which file rows to replay.
    index = Batch(
        X=np.arange(len(df), dtype=np.float64)[:, None],
        y=df["target"].to_numpy(np.int64),
        attack=df["attack"].to_numpy(object),
        feature_names=("row",),
    )
    drawn = create_outlier_batch(index, count, attack_ratio, seed=seed)
    rows = df.iloc[drawn.X[:, 0].astype(np.int64)]
    if fmt == "csv":
        text = rows.loc[:, list(KDD_COLUMNS)].to_csv(header=False, index=False, lineterminator="\n")
        values = [line.encode() for line in text.splitlines()]
    else:
        records = rows.loc[:, list(KDD_COLUMNS)].to_dict("records")
        values = [json_bytes(r) for r in records]
    return Encoded(values=values, labels=drawn.attack)


# --- sensor logs --------------------------------------------------------------------------------


def sensor_logs(paths: Sequence[str | os.PathLike]) -> bool:
    """True when every path is a sensor log, False when none is (KDD); mixing is an error,
    because one stream cannot hold records of two shapes."""
    from trainer.readers import is_sensor_log

    found = [is_sensor_log([path]) for path in paths]
    if all(found):
        return True
    if any(found):
        logs = [os.fspath(p) for p, ok in zip(paths, found) if ok]
        other = [os.fspath(p) for p, ok in zip(paths, found) if not ok]
        raise ValueError(
            f"--data mixes sensor logs ({', '.join(logs)}) with other files "
            f"({', '.join(other)}): replay one kind at a time"
        )
    return False


def log_stream(
    paths: Sequence[str | os.PathLike], *, schema: str = DEFAULT_SCHEMA, count: int | None = None
) -> Encoded:
    """Read sensor logs in event-time order and encode the first ``count`` records: every
    record, as the sensor sends them (a whole eve.json; the worker skips what its schema is
    not for, as offline scoring does), its JSON without the schema's label fields (byte for
    byte what :func:`trainer.score.input_values` gives, so the worker scores what offline
    scoring does), its label and detailed label kept for the headers.  A record is turned
    into its bytes and label codes as it is read; its dict is not kept."""
    from stream_od.schema import load_schema
    from trainer.labels import LabelCodes
    from trainer.readers import stream_logs
    from trainer.sample import CHUNK, chunks
    from trainer.score import in_time_order

    spec = load_schema(schema)
    logs = stream_logs(paths, event_types=None)
    codes = LabelCodes(spec)

    def labelled() -> Iterator[dict]:
        for chunk in chunks(logs.records(), CHUNK):
            codes.add(chunk)
            yield from chunk

    keyed = list(itertools.islice(in_time_order(labelled(), logs.fmt, spec.label_fields), count))
    order = np.fromiter((i for _, i, _ in keyed), dtype=np.int64, count=len(keyed))
    labels = codes.labels()
    return Encoded(
        values=[value for *_, value in keyed],
        labels=labels.label[order],
        details=labels.detail[order],
    )


# --- producing ----------------------------------------------------------------------------------


def producer_config(bootstrap_servers: str) -> dict:
    """The replay producer's settings: throughput defaults, then ``STREAM_OD_KAFKA`` (so one
    Secret gives every client its security settings), and idempotence, which it may not turn
    off (a retried send must not duplicate a record the demo grades)."""
    from stream_od.config import cli_kafka_config

    return {**_PRODUCER_TUNING, **cli_kafka_config(bootstrap_servers), "enable.idempotence": True}


def headers_for(stream: Encoded, i: int, seq: bytes) -> list[tuple[str, str | bytes | None]]:
    """The grading headers of record ``i``: its label, its detailed label (sensor logs) and
    its sequence number (the values are bytes; the type is what ``Producer.produce`` takes)."""
    headers: list[tuple[str, str | bytes | None]] = [
        (LABEL_HEADER, str(stream.labels[i]).encode()),
        (SEQ_HEADER, seq),
    ]
    if stream.details is not None:
        headers.append((DETAIL_HEADER, str(stream.details[i]).encode()))
    return headers


def stream_keys(stream: Encoded, key_field: str) -> list[bytes | None]:
    """Each JSON record's value at ``key_field`` as a Kafka key (a host address keys a topic so
    that all of a host's records share a partition, as traffic windows need)."""
    import orjson

    from stream_od.features import category_key
    from stream_od.records import field_value

    keys: list[bytes | None] = []
    for value in stream.values:
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("--key-field needs JSON records") from None
        key = category_key(field_value(record, key_field)) if type(record) is dict else None
        keys.append(None if key is None else key.encode())
    return keys


def produce(
    stream: Encoded,
    *,
    topic: str,
    bootstrap_servers: str,
    rate: float | None = None,
    progress: bool = False,
    start_seq: int = 0,
    keys: list[bytes | None] | None = None,
) -> int:
    """Produce the stream (keys, unless given, and ``seq`` are ``start_seq + i``); returns
    records sent."""
    from confluent_kafka import KafkaException
    from tqdm import tqdm

    from stream_od.kafka import clients

    failures: list = []  # KafkaError

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    producer = clients.plain_producer(producer_config(bootstrap_servers))
    _check_topic(producer, topic)
    bar = tqdm(  # off a terminal (a log), a redraw is a line: one every 10 s at most
        total=len(stream),
        unit="rec",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.1 if sys.stderr.isatty() else 10.0,
    )
    t0 = time.perf_counter()
    for i, value in enumerate(stream.values):
        if rate:
            ahead = (i / rate) - (time.perf_counter() - t0)
            if ahead > 0.002:
                producer.poll(0)
                time.sleep(ahead)
        seq = str(start_seq + i).encode()
        headers = headers_for(stream, i, seq)
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=seq if keys is None else keys[i],
                    on_delivery=on_delivery,
                    headers=headers,
                )
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 999:
            producer.poll(0)
            bar.update(1000)
            if failures:  # the producer already gave up on a record: stop, do not pace on
                break
    remaining = producer.flush(60)
    bar.update(len(stream) - bar.n)
    bar.close()
    if remaining or failures:
        raise KafkaException(_send_failure(topic, remaining, failures))
    return len(stream)


def _check_topic(producer, topic: str, timeout: float = 10.0) -> None:
    """A topic the broker does not know stops the replay at once: the producer itself would
    hold each record for ``topic.metadata.propagation.max.ms`` (30 s) before failing it."""
    from confluent_kafka import KafkaException

    meta = producer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is not None and meta.error is not None:
        raise KafkaException(_send_failure(topic, 0, [meta.error]))


def _send_failure(topic: str, remaining: int, failures: list) -> str:
    """What went wrong, said so that the operator knows what to fix."""
    from confluent_kafka import KafkaError

    codes = {e.code() for e in failures}
    if KafkaError.UNKNOWN_TOPIC_OR_PART in codes:
        return (
            f"topic {topic!r} does not exist: create it first (the demo and "
            "docker-compose.yml create theirs), or name an existing one with --topic"
        )
    if KafkaError.TOPIC_AUTHORIZATION_FAILED in codes:
        return f"not authorized to write to topic {topic!r}: grant WRITE on it to this principal"
    first = failures[0].str() if failures else "none failed"
    return f"{remaining} records unsent, {len(failures)} failed (first: {first})"


# --- the command --------------------------------------------------------------------------------


def _fail(msg: str) -> int:
    print(f"stream-od replay: {msg}", file=sys.stderr)
    return 2


def _stream(args: argparse.Namespace) -> tuple[Encoded, str]:
    """The stream ``args`` ask for, and what to call its attacks in the closing line."""
    if sensor_logs(args.data):
        stream = log_stream(args.data, schema=args.schema, count=args.count)
        kinds = _label_counts(stream.labels)
        return stream, ", ".join(f"{n:,} {k}" for k, n in kinds.items()) or "unlabelled"
    if len(args.data) != 1:
        raise ValueError("a KDD replay takes one --data file")
    stream = sample_stream(
        args.data[0],
        count=args.count or KDD_DEFAULT_COUNT,
        attack_ratio=args.attack_ratio,
        seed=args.seed,
        fmt=args.format,
    )
    return stream, f"{int((stream.labels != 'normal').sum())} attacks"


def _label_counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {str(v) or "no label": int(c) for v, c in zip(values, counts)}


def _run(args: argparse.Namespace) -> int:
    from stream_od.errors import StreamODError

    if args.count is not None and args.count < 1:
        return _fail("--count must be >= 1")
    if args.rate is not None and args.rate <= 0:
        return _fail("--rate must be > 0")
    try:
        stream, what = _stream(args)
        keys = stream_keys(stream, args.key_field) if args.key_field else None
        producer_config(args.bootstrap_servers)  # a bad STREAM_OD_KAFKA stops us before sending
    except (OSError, ValueError, StreamODError) as exc:
        return _fail(str(exc))
    if not len(stream):
        return _fail(f"no records in {', '.join(args.data)}")
    from confluent_kafka import KafkaException

    t0 = time.perf_counter()
    try:
        sent = produce(
            stream,
            topic=args.topic,
            bootstrap_servers=args.bootstrap_servers,
            rate=args.rate,
            progress=not args.quiet,
            keys=keys,
        )
    except KafkaException as exc:
        return _fail(str(exc.args[0]))
    took = time.perf_counter() - t0
    print(
        f"replay: {sent} records ({what}) to {args.topic} in {took:.1f} s "
        f"({sent / took:,.0f} rec/s)",
        file=sys.stderr,
    )
    return 0
