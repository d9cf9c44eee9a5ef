"""Training input from a Kafka topic: N records, labelled by their ``label`` header.

Values are JSON objects with the 41 KDD field names or KDD CSV lines (41 fields, an optional
42nd label field is ignored), as ``stream-od replay`` produces them.  The ``label`` header says
whether a record is normal (``normal``) or which attack it is; records without it are skipped,
since the reference protocol needs labels for the held-back threshold and test batches.

``normal_only``: the N counts normal records; attacks met on the way are kept, up to N, only
for the held-back evaluation batches (the detector is always fitted on normal rows only).

The records are written as a KDD CSV file, so training reads them exactly as it reads a file.

Permissions (docs/security.md): READ on the topic and DESCRIBE on the consumer group
``group_id`` (``--group-id``, default ``stream-od.trainer``).  The reader assigns the partitions
itself and never joins the group or commits, but the client looks the group up; a fixed id lets
one LITERAL ACL cover it.  Both are checked before the first record is read.
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
from typing import Any

import orjson
from confluent_kafka import KafkaException, TopicPartition

from stream_od.config import cli_kafka_config
from stream_od.kafka import clients
from stream_od.kafka.reader import explain_error
from stream_od.kafka.topics import Need, check_access
from stream_od.schema import KDD_CATEGORICAL, KDD_COLUMNS

LABEL_HEADER = "label"
NORMAL = "normal"
#: ``--group-id`` unless given: the consumer group the trainer's reader looks up.
DEFAULT_GROUP = "stream-od.trainer"


def checked_config(bootstrap_servers: str, topic: str, group_id: str) -> dict[str, Any]:
    """The client settings (``STREAM_OD_KAFKA`` included), once the brokers have been reached
    and the permissions checked: raises :class:`~stream_od.errors.ConfigError` naming what is
    wrong (credentials, TLS, a missing topic, a missing ACL) before anything is read."""
    config = cli_kafka_config(bootstrap_servers)
    check_access(
        config,
        [
            Need("topic", topic, "READ", "--data-topic"),
            Need("group", group_id, "DESCRIBE", "--group-id"),
        ],
        bootstrap_setting="--bootstrap-servers",
    )
    return config


#: A number as the KDD file's reader (pandas, float64 columns) takes it: plain ASCII decimal
#: notation.  Python's float() also takes "1_000", "nan", " 1 " and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMERIC = tuple(i for i, name in enumerate(KDD_COLUMNS) if name not in KDD_CATEGORICAL)


def _fields(value: bytes) -> list[str]:
    """The 41 KDD fields of a record value; ValueError (or KeyError, UnicodeDecodeError) for
    a value that is not a KDD record: every field is checked here, since one bad row in the
    file written for training would stop the whole training, not just skip that record."""
    text = value.strip()
    if text.startswith(b"{"):
        doc = orjson.loads(text)
        row = [str(doc[name]) for name in KDD_COLUMNS]
    else:
        try:
            # one CSV line: csv.Error on a line break outside quotes (two lines in one
            # value) or a field over csv.field_size_limit()
            rows = list(csv.reader([text.decode()]))
        except csv.Error as e:
            raise ValueError(f"not one CSV line: {e}") from e
        if len(rows) != 1:
            raise ValueError("not one CSV line")
        row = rows[0]
        if len(row) not in (len(KDD_COLUMNS), len(KDD_COLUMNS) + 1):
            raise ValueError(f"{len(row)} CSV fields, expected {len(KDD_COLUMNS)}")
        row = row[: len(KDD_COLUMNS)]
    for i in _NUMERIC:
        if not (_NUMBER.fullmatch(row[i]) and math.isfinite(float(row[i]))):
            raise ValueError(f"{KDD_COLUMNS[i]}: {row[i][:40]!r} is not a finite number")
    return row


def _text(header: str | bytes) -> str:
    """A header value as text (a consumer hands out bytes; undecodable ones are replaced)."""
    return header.decode(errors="replace") if isinstance(header, bytes) else header


def topic_to_kdd_file(
    bootstrap_servers: str,
    topic: str,
    n_records: int,
    out_path: str,
    *,
    normal_only: bool = False,
    timeout: float = 120.0,
    group_id: str = DEFAULT_GROUP,
) -> dict[str, int]:
    """Consume up to ``n_records`` (see the module doc) from the start of ``topic`` into
    ``out_path``; returns counts.  Stops at the topic's end as it was when the call began."""
    if n_records < 1:
        raise ValueError("--n-records must be >= 1")
    consumer = clients.reader_consumer(checked_config(bootstrap_servers, topic, group_id), group_id)
    counts = {"normal": 0, "attack": 0, "unlabelled": 0, "invalid": 0}
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ValueError(f"topic {topic} not found on {bootstrap_servers}")
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout
        with open(out_path, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")

            def done() -> bool:
                if normal_only:
                    return counts["normal"] >= n_records
                return counts["normal"] + counts["attack"] >= n_records

            while not done():
                pos = {tp.partition: tp.offset for tp in consumer.position(tps)}
                if all(ends[p] == 0 or pos.get(p, -1) >= ends[p] for p in ends):
                    break  # the whole topic is read
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic}: {counts} after {timeout} s")
                for msg in consumer.consume(num_messages=1000, timeout=0.5):
                    err = msg.error()
                    if err is not None:
                        raise KafkaException(explain_error(err, group_id))
                    if done():
                        break
                    partition, offset = msg.partition(), msg.offset()
                    if partition is None or offset is None:  # only error events lack them
                        raise ValueError(f"a message of {topic} without a partition or offset")
                    if offset >= ends[partition]:
                        continue
                    header = dict(msg.headers() or []).get(LABEL_HEADER)
                    if header is None:
                        counts["unlabelled"] += 1
                        continue
                    label = _text(header).rstrip(".")
                    kind = "normal" if label == NORMAL else "attack"
                    if normal_only and kind == "attack" and counts["attack"] >= n_records:
                        continue
                    try:
                        row = _fields(msg.value() or b"")
                    except (ValueError, KeyError, UnicodeDecodeError):  # see _fields
                        counts["invalid"] += 1
                        continue
                    writer.writerow([*row, label + "."])
                    counts[kind] += 1
    finally:
        consumer.close()
    if counts["normal"] == 0:
        os.unlink(out_path)
        raise ValueError(f"no record labelled normal in {topic} ({counts})")
    return counts


def topic_records(
    bootstrap_servers: str,
    topic: str,
    n_records: int,
    *,
    timeout: float = 120.0,
    group_id: str = DEFAULT_GROUP,
) -> list[dict]:
    """Up to ``n_records`` JSON objects from the start of ``topic`` (sensor records: Zeek
    JSON, Suricata EVE), for training on a site's traffic.  A ``label`` header, when a record
    has one, becomes its ``label`` field; values that are not JSON objects are skipped and
    counted.  Stops at the topic's end as it was when the call began."""
    from stream_od.kafka.reader import read_to_end

    if n_records < 1:
        raise ValueError("--n-records must be >= 1")
    out: list[dict] = []
    skipped = 0
    for msg in read_to_end(
        bootstrap_servers,
        topic,
        timeout=timeout,
        group_id=group_id,
        config=checked_config(bootstrap_servers, topic, group_id),
    ):
        try:
            rec = orjson.loads(msg.value() or b"")
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if type(rec) is not dict:
            skipped += 1
            continue
        label = dict(msg.headers() or []).get(LABEL_HEADER)
        if label is not None:
            rec[LABEL_HEADER] = _text(label)
        out.append(rec)
        if len(out) >= n_records:
            break
    if not out:
        raise ValueError(f"no JSON record in {topic} ({skipped} skipped)")
    return out
