"""``stream-od train`` and ``stream-od evaluate``.

``register(subparsers)`` adds both subcommands to the top-level ``stream-od`` parser;
``python -m trainer.cli ...`` runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from stream_od.detector import DETECTOR_KINDS
from stream_od.detector.threshold import TIE_RULES
from trainer.publish import add_train_options


def _train(args: argparse.Namespace) -> int:
    import tempfile

    from confluent_kafka import KafkaException

    from stream_od.artifact import ArtifactError
    from stream_od.errors import StreamODError
    from trainer.fit import TrainConfig, train
    from trainer.publish import after_train, training_data

    out = pathlib.Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty; choose a new directory", file=sys.stderr)
        return 2
    features = tuple(args.features) if args.features else None
    workdir = tempfile.TemporaryDirectory(prefix="stream-od-train-")
    try:
        data = training_data(args, pathlib.Path(workdir.name))
    except (OSError, ValueError, KafkaException, StreamODError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = TrainConfig(data=data, detector=args.detector, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, n_train=args.n_train,
                      threshold_percentile=args.percentile, ties=args.ties,
                      early_stopping_patience=args.early_stopping,
                      learning_rate=args.learning_rate,
                      mixture_components=args.mixture_components,
                      **({"features": features} if features else {}))
    try:
        art = train(cfg, progress=not args.quiet)
        art.save(out)
    except (FileNotFoundError, KeyError, ValueError, ArtifactError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        workdir.cleanup()
    m = art.metrics["test_batch"]
    print(json.dumps({"artifact": str(out), "version": art.version, "threshold": art.threshold,
                      "fit_seconds": round(art.metrics["fit_seconds"], 2),
                      "test_batch": {k: m[k] for k in ("f1", "precision", "recall", "auroc")}}))
    try:
        return after_train(args, art, out)  # quality gate, then --publish-dir/--publish-topic
    except (OSError, ValueError, ArtifactError, StreamODError, KafkaException) as e:
        print(f"error: publishing failed: {e}", file=sys.stderr)
        return 1


def _evaluate(args: argparse.Namespace) -> int:
    from stream_od.artifact import ArtifactError
    from trainer.report import evaluate_artifact

    try:
        rep = evaluate_artifact(args.artifact, args.data, args.out, plots=not args.no_plots)
    except (FileNotFoundError, KeyError, ValueError, ArtifactError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    summary = {k: rep[k] for k in ("version", "out_dir")}
    for part in ("test_batch", "full"):
        if part in rep:
            summary[part] = {k: rep[part][k] for k in ("n", "f1", "precision", "recall", "auroc")}
    print(json.dumps(summary))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a detector and write an artifact directory")
    p.add_argument("--data", default=None, help="KDD Cup '99 file (gzip or plain), or --data-topic")
    p.add_argument("--detector", choices=DETECTOR_KINDS, default="vaegmm")
    p.add_argument("--out", required=True, help="artifact directory to create")
    p.add_argument("--epochs", type=int, default=None, help="default 50")
    p.add_argument("--batch-size", type=int, default=None, help="default 1024")
    p.add_argument("--learning-rate", type=float, default=None, help="default 1e-4")
    p.add_argument("--seed", type=int, default=0, help="network initialisation seed")
    p.add_argument("--mixture-components", type=int, default=None, metavar="K",
                   help="scoring mixture: K components refitted by EM on the training codes, "
                        "or 0 for the estimation network's (default: vaegmm 12, aegmm 0)")
    p.add_argument("--n-train", type=int, default=400_000,
                   help="normal rows drawn (sampler seed 0) for training")
    p.add_argument("--features", nargs="+", default=None,
                   help="feature columns (default: the 18 continuous traffic features)")
    p.add_argument("--percentile", type=float, default=95.0, help="threshold percentile")
    p.add_argument("--ties", choices=TIE_RULES, default="include",
                   help="how a duplicate record at the threshold is treated (see docs)")
    p.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop when the training loss has not improved for PATIENCE epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_train_options(p)
    p.set_defaults(func=_train)

    e = subparsers.add_parser("evaluate", help="evaluate an artifact: report.json + PNG plots")
    e.add_argument("--artifact", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default=None, help="report directory (default: <artifact>-report)")
    e.add_argument("--no-plots", action="store_true")
    e.set_defaults(func=_evaluate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
