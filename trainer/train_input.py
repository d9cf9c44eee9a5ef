"""What ``stream-od train`` reads: ``--data`` files or ``--data-topic`` records.

Kafka settings and publish permissions are checked here, before any training, so a wrong
``STREAM_OD_KAFKA`` or a topic this principal cannot write to fails in seconds, not after a
fit of minutes.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainer.sample import Sample


def site_records(args: argparse.Namespace) -> Sample:
    """Sensor records to train on, in event-time order: ``--data`` logs (at most
    ``--max-rows`` of them), or ``--data-topic`` JSON records (their ``label`` header, when
    present, becomes the ``label`` field), sorted by the schema's ``time_field`` since a
    topic's partitions interleave."""
    if bool(args.data) == bool(args.data_topic):
        raise ValueError("give exactly one of --data and --data-topic")
    check_kafka_before_training(args)
    if args.data:
        return _sampled_logs(args)
    from stream_od.schema import load_schema
    from trainer.readers import sort_by_field
    from trainer.sample import ALL, Sample
    from trainer.site import selected
    from trainer.source import topic_records

    records = topic_records(
        args.bootstrap_servers, args.data_topic, args.n_records, group_id=args.group_id
    )
    schema = load_schema(args.schema)
    time_field = schema.time_field
    # Selected (and tagged records unwrapped) before the sort: a tagged record's time is inside.
    records, skipped = selected(records, schema)
    print(
        f"train: read {len(records) + skipped:,} records from {args.data_topic}"
        + (f", {skipped:,} of another kind skipped" if skipped else "")
        + (f", put in {time_field!r} order" if time_field else ""),
        file=sys.stderr,
    )
    records = sort_by_field(records, time_field) if time_field else records
    return Sample(records, len(records), ALL)


def _sampled_logs(args: argparse.Namespace) -> Sample:
    """The ``--data`` logs' records the schema is for, read one at a time, at most
    ``--max-rows`` of them kept (:mod:`trainer.sample`), in event-time order."""
    from stream_od.schema import load_schema
    from trainer.readers import read_progress, stream_logs, time_key
    from trainer.sample import ALL, CHUNK, MAX_ROWS, chunks, sample_records
    from trainer.site import schema_select, selected

    logs = stream_logs(args.data, event_types=None)  # the schema selects, as the worker
    schema = load_schema(args.schema)
    read, skipped = 0, 0
    progress = (lambda n: None) if args.quiet else read_progress("train")

    def records() -> Iterator[dict]:
        nonlocal read, skipped
        for chunk in chunks(logs.records(), CHUNK):
            read += len(chunk)
            kept, n = selected(chunk, schema)
            skipped += n
            yield from kept
            progress(read)

    max_rows = MAX_ROWS if args.max_rows is None else (args.max_rows or None)
    sample = sample_records(
        records(),
        max_rows,
        lambda r: time_key(r, logs.fmt),
        newest=schema.windows is not None,
        seed=0,  # the sample stays when only the network's --seed changes
    )
    print(
        f"train: read {read:,} records ({logs.fmt}) from {len(logs.paths)} file(s)"
        + (
            f"; {len(logs.empty)} empty file(s) skipped: {', '.join(logs.empty)}"
            if logs.empty
            else ""
        )
        + (
            f"; {skipped:,} records of another kind skipped ({schema_select(schema)})"
            if skipped
            else ""
        )
        + f"; training on {sample.describe()}"
        + ("" if sample.how == ALL else f" (--max-rows {max_rows:,}, sampler seed 0)"),
        file=sys.stderr,
    )
    return sample


def check_kafka_before_training(args: argparse.Namespace) -> None:
    """A bad ``STREAM_OD_KAFKA``, wrong credentials, or a ``--publish-topic`` this principal
    cannot publish to stops ``train`` before it trains, not after (``--data-topic`` is checked
    when it is read, which is before training too)."""
    if not (args.data_topic or args.publish_topic):
        return
    from stream_od.config import cli_kafka_config
    from stream_od.registry.topic import TopicRegistry

    config = cli_kafka_config(args.bootstrap_servers)
    if args.publish_topic:
        TopicRegistry(args.publish_topic, config).check_publish_access()


def training_data(args: argparse.Namespace, workdir: pathlib.Path) -> str:
    """The data file to train on: ``--data``, or ``--data-topic`` records written as KDD CSV."""
    if bool(args.data) == bool(args.data_topic):
        raise ValueError("give exactly one of --data and --data-topic")
    check_kafka_before_training(args)
    if args.data:
        return args.data
    from trainer.source import topic_to_kdd_file

    path = workdir / "records.csv"
    counts = topic_to_kdd_file(
        args.bootstrap_servers,
        args.data_topic,
        args.n_records,
        str(path),
        normal_only=args.normal_only,
        group_id=args.group_id,
    )
    print(f"train: read {counts} from {args.data_topic}", file=sys.stderr)
    return str(path)
