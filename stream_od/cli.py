"""The ``stream-od`` command: one entry point, one subcommand per job.

Each subcommand lives beside the code it drives and registers itself here through a
``register(subparsers)`` function; heavy imports (TensorFlow, Kafka) happen only inside the
chosen subcommand, so ``stream-od --help`` is instant.  This is the one place where
``stream_od`` reaches into ``trainer`` (for ``train`` and ``evaluate``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that provide subcommands, in the order ``--help`` lists them.
SUBCOMMAND_MODULES = (
    "trainer.cli",  # train, evaluate
    "trainer.publish",  # publish
    "stream_od.worker_cli",  # worker
    "trainer.replay",  # replay
    "stream_od.demo",  # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stream-od",
        description="Streaming anomaly detection for network traffic on Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module: say so
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) is noise on a terminal;
    # an operator who wants it sets TF_CPP_MIN_LOG_LEVEL=0.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
