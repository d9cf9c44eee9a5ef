"""What the side-by-side scoring benchmarks of a neural artifact share (``forward_sums.py``,
``contributions.py``, ``distinct_rows.py``): the common part of their command line, the
artifact they need (one with networks), how they report (a row as it is measured, the table's
heading) and how they end (the rows as JSON; exit status 1 when the two ways compared did not
give the same bits, which each of them promises)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stream_od.artifact import Artifact


def parser(doc: str | None, *, batches: list[int], repeats: int) -> argparse.ArgumentParser:
    """``--artifact``, ``--data``, ``--batches``, ``--repeats`` and ``--json``; a benchmark
    adds its own."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True, help="a neural artifact (VAEGMM or AEGMM)")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--batches", nargs="+", type=int, default=batches)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--json")
    return p


def neural_artifact(p: argparse.ArgumentParser, path: str) -> Artifact:
    """The artifact at ``path``; a usage error when its detector has no networks."""
    art = Artifact.load(path)
    if not hasattr(art.detector, "networks_"):
        p.error(f"{art.detector_kind} has no networks: give a VAEGMM or AEGMM")
    return art


def progress(row: dict) -> None:
    """A row as soon as it is measured, on stderr, without its runs."""
    print(json.dumps({k: v for k, v in row.items() if k != "runs"}), file=sys.stderr)


def heading(art: Artifact, features: int, repeats: int) -> str:
    """The line above a benchmark's table: what was scored, and of how many runs the medians."""
    return f"\n{art.detector_kind}, {features} features; median of {repeats}\n"


def finish(
    args: argparse.Namespace, art: Artifact, features: int, rows: list[dict], **extra: Any
) -> int:
    """Write the result to ``--json`` (the artifact, its feature count, the repeats, ``extra``
    and the rows); the exit status: 0 when every row kept the same bits."""
    if args.json:
        out = {
            "artifact": art.version,
            "detector": art.detector_kind,
            "features": int(features),
            "repeats": args.repeats,
            **extra,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r["identical_bits"] for r in rows) else 1
