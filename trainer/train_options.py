"""The options ``stream-od train`` takes for Kafka input, the quality gate and publishing.

The trainer's own options (data, schema, detector, network) are in :mod:`trainer.cli`; these
are the ones :mod:`trainer.train_input`, :mod:`trainer.gate` and :mod:`trainer.publish` read.
"""

from __future__ import annotations

import argparse

from stream_od.arg_types import positive_int, share


def add_train_options(p: argparse.ArgumentParser) -> None:
    """The ``train`` options for Kafka input, the quality gate and publishing."""
    g = p.add_argument_group("input from Kafka (instead of --data)")
    g.add_argument("--data-topic", metavar="T", help="read training records from this topic")
    g.add_argument(
        "--n-records",
        type=positive_int,
        default=100_000,
        metavar="N",
        help="records to read from --data-topic (default 100000)",
    )
    g.add_argument(
        "--normal-only",
        action="store_true",
        help="N counts records whose label header is normal; attacks are kept only "
        "for the held-back evaluation batches",
    )
    g.add_argument(
        "--group-id",
        default="stream-od.trainer",
        metavar="G",
        help="consumer group the --data-topic reader looks up (it never commits); a "
        "secured cluster needs DESCRIBE on it (default stream-od.trainer)",
    )
    g = p.add_argument_group("quality gate and publishing")
    g.add_argument("--min-auroc", type=share, default=None, help="ROC AUC floor on the test batch")
    g.add_argument("--min-f1", type=share, default=None, help="F1 floor on the test batch")
    g.add_argument("--publish-dir", metavar="D", help="publish to this directory registry")
    g.add_argument(
        "--publish-topic",
        metavar="T",
        nargs="?",
        const="stream-od.models",
        help="publish to this models topic (default stream-od.models)",
    )
    g.add_argument(
        "--bootstrap-servers",
        default="127.0.0.1:9092",
        help="Kafka for --data-topic and --publish-topic; security settings come "
        "from STREAM_OD_KAFKA, as for the workers",
    )
