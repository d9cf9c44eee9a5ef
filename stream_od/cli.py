"""The ``stream-od`` command: one entry point, one subcommand per job.

Each subcommand lives beside the code it drives and registers itself through a
``register(subparsers)`` function, published in the ``stream_od.subcommands`` entry-point group
(pyproject.toml); heavy imports (TensorFlow, Kafka) happen only inside the chosen subcommand, so
``stream-od --help`` is instant.  ``stream_od`` never names a ``trainer`` module: the trainer's
subcommands arrive through the group like any other.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings
from importlib.metadata import entry_points

GROUP = "stream_od.subcommands"
# The order ``--help`` lists them in; subcommands from elsewhere follow, by name.
ORDER = ("train", "publish", "worker", "replay", "demo")
# What `pip install 'stream-od[train]'` adds to the worker (top-level module names).
TRAINER_MODULES = frozenset(
    {"tensorflow", "keras", "pandas", "sklearn", "matplotlib", "h5py", "tqdm"}
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stream-od",
        description="Streaming anomaly detection for network traffic on Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    found = sorted(
        entry_points(group=GROUP),
        key=lambda ep: (ORDER.index(ep.name) if ep.name in ORDER else len(ORDER), ep.name),
    )
    if not found:
        raise SystemExit(
            f"stream-od: no subcommands in the {GROUP!r} entry points: install the "
            "package (pip install -e . in a checkout) rather than running it from "
            "the source tree"
        )
    for ep in found:
        ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) is noise on a terminal;
    # an operator who wants it sets TF_CPP_MIN_LOG_LEVEL=0.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = warnings.formatwarning
    warnings.formatwarning = functools.partial(_warning_line, f"stream-od {args.command}", previous)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:  # the worker-only install running a trainer command
        if (exc.name or "").split(".")[0] not in TRAINER_MODULES:
            raise
        print(
            f"stream-od {args.command}: this command needs {exc.name}, which comes with the "
            "trainer: pip install 'stream-od[train]' (the worker alone needs none of it)",
            file=sys.stderr,
        )
        return 2
    finally:
        warnings.formatwarning = previous


_OWN = (
    os.path.dirname(__file__),
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "trainer"),
)


def _warning_line(prefix, others, message, category, filename, lineno, line=None) -> str:
    """Our own warnings (a field no training record has, a log's unfinished last line) as a
    line an operator reads, ``stream-od train: warning: ...``, not as a source location with
    the code that raised it; anyone else's keep Python's format, which says where they came
    from."""
    if issubclass(category, UserWarning) and str(filename).startswith(_OWN):
        return f"{prefix}: warning: {message}\n"
    return others(message, category, filename, lineno, line)


if __name__ == "__main__":
    sys.exit(main())
