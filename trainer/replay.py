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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from stream_od.arg_types import MIN_RATE, is_pace

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
        "--attack-ratio", type=float, default=None, help="KDD: percent attacks (default 5)"
    )
    p.add_argument("--seed", type=int, default=None, help="KDD: the sampler's seed (default 0)")
    p.add_argument(
        "--format",
        choices=("json", "csv"),
        default=None,
        help="KDD: JSON objects or raw CSV lines (default json)",
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


#: what replay sends of a record: its value, its label and its detailed label (None: no header)
Item = tuple[bytes, str, "str | None"]


@dataclass(frozen=True)
class Encoded:
    """A stream held in memory, ready to produce: values and labels in send order (keys are
    sequence numbers).  KDD replays, and tests that cut a stream up, use it.

    ``details`` (sensor logs only) is the detailed label per record; ``None`` sends no
    ``detailed_label`` header, as for KDD, whose label already names the attack.
    """

    values: list[bytes]
    labels: np.ndarray  # label per record ("normal" for normal KDD traffic)
    details: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def items(self) -> Iterator[Item]:
        details = itertools.repeat(None) if self.details is None else self.details
        return zip(self.values, self.labels, details)


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


class LogReplay:
    """Sensor logs as replay sends them, in event-time order: every record, as the sensor sends
    them (a whole eve.json; the worker skips what its schema is not for, as offline scoring
    does), its JSON without the schema's label fields (byte for byte what
    :func:`trainer.score.input_values` gives, so the worker scores what offline scoring does),
    its label and detailed label for the headers; the first ``count`` of them.

    The records go through :func:`trainer.score.in_time_order`'s bounded sort and are sent as
    they come out of it, so a capture of tens of millions of records is not held in memory
    (the sort keeps at most one run, :data:`trainer.time_order.RUN`).  A sort yields nothing
    before it has read its last record, so once the constructor has the first, every record
    has been read and its labels coded (:class:`trainer.labels.LabelCodes`, a few bytes a
    row): the label field is known, the length too, and a log that cannot be read has failed
    before anything is sent.  :meth:`items` goes through the records once."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        schema: str = DEFAULT_SCHEMA,
        count: int | None = None,
    ):
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

        self._sorted = in_time_order(labelled(), logs.fmt, spec.label_fields)
        self._first = next(self._sorted, None)
        labels = codes.labels()  # by position read, as the sort reports it
        self._labels, self._details = labels.label, labels.detail
        self._count = codes.n if count is None else min(count, codes.n)
        #: records sent so far per label, for the closing line
        self.sent: Counter[str] = Counter()

    def __len__(self) -> int:
        return self._count

    def items(self) -> Iterator[Item]:
        """The records in send order (once); the sort's files go when this ends or closes."""
        if self._first is None:
            return
        try:
            ordered = itertools.chain([self._first], self._sorted)
            for _, position, value in itertools.islice(ordered, self._count):
                label = self._labels[position]
                self.sent[label] += 1
                yield value, label, self._details[position]
        finally:
            self._sorted.close()


def log_stream(
    paths: Sequence[str | os.PathLike], *, schema: str = DEFAULT_SCHEMA, count: int | None = None
) -> Encoded:
    """:class:`LogReplay`, held in memory (for tests and benchmarks that cut it up)."""
    items = list(LogReplay(paths, schema=schema, count=count).items())
    return Encoded(
        values=[value for value, _, _ in items],
        labels=np.array([label for _, label, _ in items], dtype=object),
        details=np.array([detail for *_, detail in items], dtype=object),
    )


# --- producing ----------------------------------------------------------------------------------


def producer_config(bootstrap_servers: str) -> dict:
    """The replay producer's settings: throughput defaults, then ``STREAM_OD_KAFKA`` (so one
    Secret gives every client its security settings), and idempotence, which it may not turn
    off (a retried send must not duplicate a record the demo grades)."""
    from stream_od.config import cli_kafka_config

    return {**_PRODUCER_TUNING, **cli_kafka_config(bootstrap_servers), "enable.idempotence": True}


def headers_for(label: str, detail: str | None, seq: bytes) -> list[tuple[str, str | bytes | None]]:
    """A record's grading headers: its label, its detailed label (sensor logs) and its sequence
    number (the values are bytes; the type is what ``Producer.produce`` takes)."""
    headers: list[tuple[str, str | bytes | None]] = [
        (LABEL_HEADER, str(label).encode()),
        (SEQ_HEADER, seq),
    ]
    if detail is not None:
        headers.append((DETAIL_HEADER, str(detail).encode()))
    return headers


def record_key(value: bytes, key_field: str) -> bytes | None:
    """A JSON record's value at ``key_field`` as its Kafka key (a host address keys a topic so
    that all of a host's records share a partition, as traffic windows need)."""
    import orjson

    from stream_od.features import category_key
    from stream_od.records import field_value

    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ValueError("--key-field needs JSON records") from None
    key = category_key(field_value(record, key_field)) if type(record) is dict else None
    return None if key is None else key.encode()


def produce(
    stream: Encoded | LogReplay,
    *,
    topic: str,
    bootstrap_servers: str,
    rate: float | None = None,
    progress: bool = False,
    start_seq: int = 0,
    key_field: str | None = None,
) -> int:
    """Produce the stream; returns records sent.  ``seq`` is ``start_seq + i``, and so is the
    key, unless ``key_field`` names a field to key by (:func:`record_key`)."""
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
    sent = keyed = 0
    for i, (value, label, detail) in enumerate(stream.items()):
        if rate:
            ahead = (i / rate) - (time.perf_counter() - t0)
            if ahead > 0.002:
                producer.poll(0)
                time.sleep(ahead)
        seq = str(start_seq + i).encode()
        headers = headers_for(label, detail, seq)
        key = seq if key_field is None else record_key(value, key_field)
        keyed += key is not None
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=key,
                    on_delivery=on_delivery,
                    headers=headers,
                )
                break
            except BufferError:
                producer.poll(0.05)
        sent = i + 1
        if i % 1000 == 999:
            producer.poll(0)
            bar.update(1000)
            if failures:  # the producer already gave up on a record: stop, do not pace on
                break
    remaining = producer.flush(60)
    bar.update(sent - bar.n)
    bar.close()
    if remaining or failures:
        raise KafkaException(_send_failure(topic, remaining, failures))
    if key_field is not None and sent and not keyed:  # a mistyped field, most likely
        print(
            f"replay: warning: no record has --key-field {key_field!r}; all {sent:,} were sent "
            "without a key (check the field's name: a host field keys a topic by host)",
            file=sys.stderr,
        )
    return sent


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


def _stream(args: argparse.Namespace) -> tuple[Encoded | LogReplay, Callable[[], str]]:
    """The stream ``args`` ask for, and what to call what was sent in the closing line."""
    kdd = {"--attack-ratio": args.attack_ratio, "--seed": args.seed, "--format": args.format}
    if sensor_logs(args.data):
        given = [flag for flag, value in kdd.items() if value is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)}: for a KDD replay; a sensor log is sent as it is, every "
                "record (or --count of them) in event-time order"
            )
        logs = LogReplay(args.data, schema=args.schema, count=args.count)
        return logs, lambda: _label_text(logs.sent)
    if len(args.data) != 1:
        raise ValueError("a KDD replay takes one --data file")
    if args.key_field and args.format == "csv":
        raise ValueError("--key-field needs JSON records: leave out --format csv")
    stream = sample_stream(
        args.data[0],
        count=args.count or KDD_DEFAULT_COUNT,
        attack_ratio=5.0 if args.attack_ratio is None else args.attack_ratio,
        seed=args.seed or 0,
        fmt=args.format or "json",
    )
    return stream, lambda: f"{int((stream.labels != 'normal').sum())} attacks"


def _label_text(sent: Counter[str]) -> str:
    return ", ".join(f"{n:,} {k or 'no label'}" for k, n in sorted(sent.items())) or "unlabelled"


def _run(args: argparse.Namespace) -> int:
    from stream_od.errors import StreamODError
    from trainer.cli import UNREADABLE, unreadable

    if args.count is not None and args.count < 1:
        return _fail("--count must be >= 1")
    if args.rate is not None and not is_pace(args.rate):
        return _fail(f"--rate must be a finite number of records a second, {MIN_RATE} or more")
    try:
        stream, what = _stream(args)
        producer_config(args.bootstrap_servers)  # a bad STREAM_OD_KAFKA stops us before sending
    except UNREADABLE as exc:  # a damaged --data file: which one, and what to do
        return _fail(unreadable(exc, args.data))
    except (ValueError, StreamODError) as exc:
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
            key_field=args.key_field,
        )
    except KafkaException as exc:
        return _fail(str(exc.args[0]))
    took = time.perf_counter() - t0
    print(
        f"replay: {sent} records ({what()}) to {args.topic} in {took:.1f} s "
        f"({sent / took:,.0f} rec/s)",
        file=sys.stderr,
    )
    return 0
