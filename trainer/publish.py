"""``stream-od publish``, and the publishing and quality-gate steps of ``stream-od train``.

Publishing verifies the artifact (sha256 manifest), signs a staged copy with
``STREAM_OD_MODEL_SIGNING_KEY`` when it is set, and puts it on a directory registry and/or a
Kafka models topic (see ``docs/registry.md``).  The quality gate compares the figures measured
on the held-back test batch with ``--min-auroc`` / ``--min-f1`` (and, for a model trained on
sensor logs, the held-out alert rate with ``--max-alert-rate``, by default twice the target);
below a floor nothing is published and the command exits with :data:`EXIT_GATE`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tempfile

EXIT_GATE = 3


def publish(artifact_dir, *, registry_dir=None, topic=None, bootstrap_servers="127.0.0.1:9092",
            key: bytes | None = None) -> dict:
    """Publish one artifact; returns ``{"version", "registry_dir"?, "topic"?, "offset"?}``.
    The topic's client also takes ``STREAM_OD_KAFKA`` (security settings), as the workers do."""
    from stream_od.artifact import Artifact
    from stream_od.config import cli_kafka_config
    from stream_od.registry import signing
    from stream_od.registry.directory import DirectoryRegistry
    from stream_od.registry.topic import TopicRegistry

    if registry_dir is None and topic is None:
        raise ValueError("nowhere to publish: give a registry directory and/or a topic")
    art = Artifact.load(artifact_dir)  # refuses a modified artifact before anyone sees it
    out: dict = {"version": art.version, "signed": key is not None}
    with tempfile.TemporaryDirectory(prefix="stream-od-publish-") as tmp:
        staged = pathlib.Path(tmp) / art.version
        shutil.copytree(artifact_dir, staged, symlinks=True)
        (staged / signing.SIGNATURE).unlink(missing_ok=True)
        if key is not None:
            signing.sign(staged, key)
        if registry_dir is not None:
            DirectoryRegistry(registry_dir).publish(staged)
            out["registry_dir"] = str(registry_dir)
        if topic is not None:
            registry = TopicRegistry(topic, cli_kafka_config(bootstrap_servers))
            _, out["offset"] = registry.publish(staged)
            out["topic"] = topic
    return out


def gate_failures(test_batch: dict, *, min_auroc: float | None, min_f1: float | None) -> list[str]:
    """What falls below a floor, e.g. ``["auroc 0.91 < 0.95"]``; empty when the model passes."""
    failures = []
    for name, floor in (("auroc", min_auroc), ("f1", min_f1)):
        if floor is None:
            continue
        value = float(test_batch.get(name, float("nan")))
        if not value >= floor:  # NaN fails too
            failures.append(f"{name} {value:.4f} < {floor}")
    return failures


def add_train_options(p: argparse.ArgumentParser) -> None:
    """The ``train`` options for Kafka input, the quality gate and publishing."""
    g = p.add_argument_group("input from Kafka (instead of --data)")
    g.add_argument("--data-topic", metavar="T", help="read training records from this topic")
    g.add_argument("--n-records", type=int, default=100_000, metavar="N",
                   help="records to read from --data-topic (default 100000)")
    g.add_argument("--normal-only", action="store_true",
                   help="N counts records whose label header is normal; attacks are kept only "
                        "for the held-back evaluation batches")
    g = p.add_argument_group("quality gate and publishing")
    g.add_argument("--min-auroc", type=float, default=None, help="ROC AUC floor on the test batch")
    g.add_argument("--min-f1", type=float, default=None, help="F1 floor on the test batch")
    g.add_argument("--publish-dir", metavar="D", help="publish to this directory registry")
    g.add_argument("--publish-topic", metavar="T", nargs="?", const="stream-od.models",
                   help="publish to this models topic (default stream-od.models)")
    g.add_argument("--bootstrap-servers", default="127.0.0.1:9092",
                   help="Kafka for --data-topic and --publish-topic; security settings come "
                        "from STREAM_OD_KAFKA, as for the workers")


def site_records(args: argparse.Namespace) -> list[dict]:
    """Sensor records to train on, in event-time order: ``--data`` logs, or ``--data-topic``
    JSON records (their ``label`` header, when present, becomes the ``label`` field), sorted
    by the schema's ``time_field`` since a topic's partitions interleave."""
    if bool(args.data) == bool(args.data_topic):
        raise ValueError("give exactly one of --data and --data-topic")
    if args.data_topic or args.publish_topic:
        from stream_od.config import cli_kafka_config
        cli_kafka_config(args.bootstrap_servers)  # a bad STREAM_OD_KAFKA stops before training
    if args.data:
        from trainer.readers import read_logs

        table = read_logs(args.data)
        print(f"train: read {len(table):,} records ({table.fmt}) from "
              f"{len(args.data)} file(s)", file=sys.stderr)
        return table.records
    from stream_od.schema import load_schema
    from trainer.readers import sort_by_field
    from trainer.source import topic_records

    records = topic_records(args.bootstrap_servers, args.data_topic, args.n_records)
    time_field = load_schema(args.schema).time_field
    print(f"train: read {len(records):,} records from {args.data_topic}"
          + (f", put in {time_field!r} order" if time_field else ""), file=sys.stderr)
    return sort_by_field(records, time_field) if time_field else records


def training_data(args: argparse.Namespace, workdir: pathlib.Path) -> str:
    """The data file to train on: ``--data``, or ``--data-topic`` records written as KDD CSV."""
    if bool(args.data) == bool(args.data_topic):
        raise ValueError("give exactly one of --data and --data-topic")
    if args.data_topic or args.publish_topic:
        from stream_od.config import cli_kafka_config
        cli_kafka_config(args.bootstrap_servers)  # a bad STREAM_OD_KAFKA stops before training
    if args.data:
        return args.data
    from trainer.source import topic_to_kdd_file

    path = workdir / "records.csv"
    counts = topic_to_kdd_file(args.bootstrap_servers, args.data_topic, args.n_records,
                               str(path), normal_only=args.normal_only)
    print(f"train: read {counts} from {args.data_topic}", file=sys.stderr)
    return str(path)


def after_train(args: argparse.Namespace, art, out: pathlib.Path) -> int:
    """Gate, then publish; returns the exit code (0, or :data:`EXIT_GATE`)."""
    from stream_od.registry import signing

    if "holdout" in art.metrics:  # trained on sensor logs (trainer.site)
        figures = art.metrics["holdout"]
        limit = getattr(args, "max_alert_rate", None)
        if limit is None:
            limit = 2 * figures["target_alert_rate"]
        failures = gate_failures(figures, min_auroc=args.min_auroc, min_f1=args.min_f1)
        if (args.min_auroc is not None or args.min_f1 is not None) and "auroc" not in figures:
            failures.append("no labelled malicious rows to measure --min-auroc/--min-f1 on")
        if not figures["alert_rate"] <= limit:
            failures.append(f"held-out alert rate {figures['alert_rate']:.4f} > {limit:.4f} "
                            f"(target {figures['target_alert_rate']})")
    else:
        figures = art.metrics["test_batch"]
        failures = gate_failures(figures, min_auroc=args.min_auroc, min_f1=args.min_f1)
    if failures:
        print(json.dumps({"quality_gate": "failed", "version": art.version, "below": failures,
                          ("holdout" if "holdout" in art.metrics else "test_batch"): {
                              k: figures.get(k) for k in ("f1", "precision", "recall", "auroc",
                                                          "alert_rate") if k in figures}}),
              file=sys.stderr)
        print(f"error: quality gate failed ({'; '.join(failures)}): nothing published",
              file=sys.stderr)
        return EXIT_GATE
    if args.publish_dir or args.publish_topic:
        result = publish(out, registry_dir=args.publish_dir, topic=args.publish_topic,
                         bootstrap_servers=args.bootstrap_servers, key=signing.key_from_env())
        print(json.dumps({"published": result}), file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from stream_od.artifact import ArtifactError
    from stream_od.errors import StreamODError
    from stream_od.registry import signing

    try:
        key = signing.key_from_env()
        if key is None:
            print(f"publish: {signing.SIGNING_KEY_ENV} is not set: publishing unsigned (workers "
                  "with a key configured will refuse it)", file=sys.stderr)
        result = publish(args.artifact, registry_dir=args.registry_dir, topic=args.topic,
                         bootstrap_servers=args.bootstrap_servers, key=key)
    except (ArtifactError, StreamODError, ValueError, OSError, KafkaException) as exc:
        print(f"stream-od publish: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("publish", help="publish an artifact to a model registry",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", required=True, metavar="DIR", help="artifact directory")
    p.add_argument("--registry-dir", metavar="D", help="directory registry root")
    p.add_argument("--topic", metavar="T", nargs="?", const="stream-od.models",
                   help="models topic (default stream-od.models)")
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092",
                   help="Kafka for --topic; security settings come from STREAM_OD_KAFKA")
    p.set_defaults(func=_run)
