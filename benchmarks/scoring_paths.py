"""Scoring rows/s by batch size: numpy on the CPU against Keras (TensorFlow's device: a GPU
when it sees one), the same artifact side by side, and how far their scores differ.

    python benchmarks/scoring_paths.py --artifact DIR --data FILE [--json out.json]

``--data`` is what the artifact scores (the KDD file or sensor logs); the rows are encoded
once and tiled up to the largest batch.  Each (path, batch size) is timed over ``--seconds``
of repeated calls after one warm-up call, ``--repeats`` times, and the median rows/s is
reported.  The score comparison is on up to 100,000 rows: the largest relative difference
(to ``max(1, |score|)``), the median one, and how many decisions at the artifact's threshold
differ.

A second table times the worker's own CPU-side stage on micro-batches of ``--stage-batches``
records (the worker's ``max_batch_records`` is 1,000): decoding the wire bytes, then the model's
``score_and_contributions`` (what ``Worker._score`` does, without Kafka), on each path.

On a GPU machine (``pip install 'stream-od[gpu]'``) this is the prepared measurement of the
GPU path; ``benchmarks/stream_throughput.py --scoring-device gpu`` measures the worker with it
where a broker runs beside the GPU.  The Keras path runs on the backend ``KERAS_BACKEND``
names (TensorFlow by default; JAX and PyTorch too); where it sees no GPU the Keras rows are its
CPU kernels, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BATCHES = (1, 10, 100, 1_000, 10_000, 65_536)


def wire(artifact, paths: list[str], limit: int) -> list[bytes]:
    from trainer.score import input_values

    return input_values(paths, artifact.schema.label_fields)[:limit]


def stage_rate(artifact, values: list[bytes], batch: int, seconds: float) -> float:
    """Records/s of the worker's CPU-side stage: decode a micro-batch, score it."""
    from stream_od.records import RecordDecoder

    decoder = RecordDecoder(artifact.schema)
    chunks = [values[i : i + batch] for i in range(0, len(values) - batch + 1, batch)]

    def one(chunk: list[bytes]) -> None:
        artifact.score_and_contributions(decoder.decode(chunk).X)

    one(chunks[0])  # warm-up
    n, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        one(chunks[i % len(chunks)])
        n, i = n + batch, i + 1
    return n / (time.perf_counter() - start)


def both_paths(det, batch: int, unit: str, measure: Callable[[], float], repeats: int) -> dict:
    """One row of a table: ``measure`` (``unit``s per second) on the numpy path and on Keras',
    the median of ``repeats`` each, and their ratio; the detector is left on numpy."""
    row: dict = {"batch": batch}
    for path in ("numpy", "keras"):
        getattr(det, f"use_{path}")()
        row[f"{path}_{unit}_per_s"] = statistics.median(measure() for _ in range(repeats))
    det.use_numpy()
    row["keras_over_numpy"] = row[f"keras_{unit}_per_s"] / row[f"numpy_{unit}_per_s"]
    print(json.dumps(row), file=sys.stderr)
    return row


def versions() -> dict[str, str]:
    """The installed versions of what the two paths run on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "keras", "tensorflow", "jax", "jaxlib", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def differences(a: np.ndarray, b: np.ndarray, threshold: float) -> dict:
    """How far scores ``a`` are from ``b``: relative to ``max(1, |b|)``, and decisions."""
    rel = np.abs(a - b) / np.maximum(1.0, np.abs(b))
    return {
        "rows_compared": len(a),
        "max_rel_diff": float(rel.max()),
        "median_rel_diff": float(np.median(rel)),
        "decisions_differing": int(((a > threshold) != (b > threshold)).sum()),
    }


def rate(score, X: np.ndarray, seconds: float) -> float:
    score(X)  # warm-up: first-call tracing and allocation
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        score(X)
        n += len(X)
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True, help="a neural artifact (VAEGMM or AEGMM)")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    p.add_argument("--stage-batches", nargs="+", type=int, default=[100, 1_000])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args(argv)

    from stream_od.artifact import Artifact
    from stream_od.detector.device import keras_backend, visible_gpus

    art = Artifact.load(args.artifact)
    det = art.detector
    if not hasattr(det, "use_keras"):
        p.error(f"{art.detector_kind} has one scoring path (numpy): give a VAEGMM or AEGMM")
    from stream_od.records import RecordDecoder

    values = wire(art, args.data, 100_000)
    X = RecordDecoder(art.schema).decode(values).X
    reps = -(-max(args.batches) // len(X))
    tiled = np.tile(X, (reps, 1))
    gpus, backend = visible_gpus(), keras_backend()
    keras_device = gpus[0] if gpus else f"cpu ({backend} sees no GPU)"

    det.use_numpy()
    s_numpy = art.score(X)
    det.use_keras()
    s_keras = art.score(X)
    # Keras against itself: the same rows in micro-batches of 100 (the worker's at 3,000
    # records/s) against all at once, for the scale of the backend's own batch-size rounding.
    s_keras_100 = np.concatenate([art.score(X[i : i + 100]) for i in range(0, len(X), 100)])
    det.use_numpy()
    diff = differences(s_numpy, s_keras, art.threshold) | {
        f"keras_batches_of_100_{k}": v
        for k, v in differences(s_keras_100, s_keras, art.threshold).items()
        if k != "rows_compared"
    }

    table = [
        both_paths(
            det, b, "rows", lambda b=b: rate(art.score, tiled[:b], args.seconds), args.repeats
        )
        for b in args.batches
    ]
    stage = [
        both_paths(
            det, b, "records", lambda b=b: stage_rate(art, values, b, args.seconds), args.repeats
        )
        for b in args.stage_batches
    ]

    print(f"\n{art.detector_kind} {art.version}; keras ({backend}) on {keras_device}")
    print("| batch | numpy (cpu) rows/s | keras rows/s | keras / numpy |\n|---|---|---|---|")
    for r in table:
        print(
            f"| {r['batch']:,} | {r['numpy_rows_per_s']:,.0f} | {r['keras_rows_per_s']:,.0f} | "
            f"{r['keras_over_numpy']:.2f} |"
        )
    print(
        "\nthe worker's stage (decode + score + contributions, no Kafka), records/s:\n"
        "| micro-batch | numpy (cpu) | keras | keras / numpy |\n|---|---|---|---|"
    )
    for r in stage:
        print(
            f"| {r['batch']:,} | {r['numpy_records_per_s']:,.0f} | "
            f"{r['keras_records_per_s']:,.0f} | {r['keras_over_numpy']:.2f} |"
        )
    print(
        f"\nscores, numpy against keras, {diff['rows_compared']:,} rows: max relative "
        f"difference {diff['max_rel_diff']:.2e}, median {diff['median_rel_diff']:.2e}, "
        f"{diff['decisions_differing']} decisions differ"
    )
    print(
        f"scores, keras in batches of 100 against keras at once: max relative difference "
        f"{diff['keras_batches_of_100_max_rel_diff']:.2e}, median "
        f"{diff['keras_batches_of_100_median_rel_diff']:.2e}, "
        f"{diff['keras_batches_of_100_decisions_differing']} decisions differ"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "config": vars(args),
                    "artifact": art.version,
                    "keras_backend": backend,
                    "versions": versions(),
                    "keras_device": keras_device,
                    "gpus": gpus,
                    "score_difference": diff,
                    "rows": table,
                    "worker_stage": stage,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
