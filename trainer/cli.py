"""``stream-od train``, ``stream-od evaluate`` and ``stream-od score``.

``train`` runs the KDD reference protocol on the KDD files (schemas ``kdd99``, ``kdd99-full``)
and fits on a site's own traffic for sensor schemas (``zeek-conn``, ``suricata-flow``, a TOML
file): see :mod:`trainer.fit` and :mod:`trainer.site`.

``register(subparsers)`` adds both subcommands to the top-level ``stream-od`` parser;
``python -m trainer.cli ...`` runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import pathlib
import sys
import zlib
from collections.abc import Sequence

from stream_od.arg_types import non_negative_int, positive_float, positive_int, share
from stream_od.detector import DETECTOR_KINDS
from stream_od.detector.threshold import TIE_RULES
from stream_od.features import NEVER_VARIED
from trainer.sample import MAX_ROWS
from trainer.train_options import add_train_options


def _train(args: argparse.Namespace) -> int:
    import tempfile

    from confluent_kafka import KafkaException

    from stream_od.artifact import ArtifactError
    from stream_od.errors import StreamODError
    from trainer.fit import TrainConfig, train
    from trainer.publish import after_train
    from trainer.train_input import training_data

    out = pathlib.Path(args.out)
    refused = _refused_out(out)
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    if is_site_training(args):
        kdd_only = [flag for flag, value in KDD_ONLY.items() if getattr(args, value) is not None]
        if kdd_only:
            print(
                f"error: {', '.join(kdd_only)} {'is' if len(kdd_only) == 1 else 'are'} for the "
                "KDD reference protocol; sensor logs take their features from --schema and "
                "their threshold from --target-alert-rate",
                file=sys.stderr,
            )
            return 2
        return _train_site(args, out)
    if args.max_rows is not None:
        print(
            "error: --max-rows is for sensor logs (--schema zeek-conn, suricata-flow or a TOML "
            "file); the KDD reference protocol draws its rows with --n-train",
            file=sys.stderr,
        )
        return 2
    if args.never_varied is not None:
        print(
            "error: --never-varied is for sensor logs (--schema zeek-conn, suricata-flow or a "
            "TOML file); the KDD reference protocol scales every column as the paper's "
            "protocol does",
            file=sys.stderr,
        )
        return 2
    if args.schema is None and args.data:
        hint = _sensor_log_hint(args.data)
        if hint:
            print(f"error: {hint}", file=sys.stderr)
            return 2
    if args.data and len(args.data) > 1:
        print(
            "error: the KDD reference protocol reads one file; several files are for sensor "
            "logs (--schema zeek-conn, suricata-flow or a TOML file)",
            file=sys.stderr,
        )
        return 2
    args.data = args.data[0] if args.data else None
    features = tuple(args.features) if args.features else None
    workdir = tempfile.TemporaryDirectory(prefix="stream-od-train-")
    try:
        data = training_data(args, pathlib.Path(workdir.name))
    except (OSError, ValueError, KafkaException, StreamODError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = TrainConfig(
        data=data,
        detector=args.detector,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        n_train=400_000 if args.n_train is None else args.n_train,
        threshold_percentile=95.0 if args.percentile is None else args.percentile,
        ties=args.ties,
        early_stopping_patience=args.early_stopping,
        learning_rate=args.learning_rate,
        mixture_components=args.mixture_components,
        schema=args.schema,
        **({"features": features} if features else {}),
    )
    try:
        art = train(cfg, progress=not args.quiet)
        art.save(out)
    except (FileNotFoundError, KeyError, ValueError, ArtifactError, FloatingPointError) as e:
        print(f"error: {_text(e)}", file=sys.stderr)
        return 1
    except UNREADABLE as e:  # a damaged --data file (it is read here, not by training_data)
        print(f"error: {unreadable(e, [args.data] if args.data else [])}", file=sys.stderr)
        return 1
    finally:
        workdir.cleanup()
    m = art.metrics["test_batch"]
    print(
        json.dumps(
            {
                "artifact": str(out),
                "version": art.version,
                "threshold": art.threshold,
                "fit_seconds": round(art.metrics["fit_seconds"], 2),
                "test_batch": {k: m[k] for k in ("f1", "precision", "recall", "auroc")},
            }
        )
    )
    try:
        return after_train(args, art, out)  # quality gate, then --publish-dir/--publish-topic
    except (OSError, ValueError, ArtifactError, StreamODError, KafkaException) as e:
        print(f"error: publishing failed: {e}", file=sys.stderr)
        return 1


def _refused_out(out: pathlib.Path) -> str | None:
    """Why the artifact directory ``out`` cannot be written, said before training rather than
    after it: a file, a directory with something in it, or a place this user cannot write."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a directory: name a new directory"
    if out.is_dir() and any(out.iterdir()):
        return f"{out} is not empty; choose a new directory"
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out}: cannot create it in {existing} (not a writable directory)"
    return None


KDD_SCHEMAS = ("kdd99", "kdd99-full")
#: the flags only the KDD reference protocol reads, and their argparse names
KDD_ONLY = {"--n-train": "n_train", "--features": "features", "--percentile": "percentile"}

#: the built-in schema for each log format, and what to call the format
SCHEMA_FOR = {"zeek-tsv": "zeek-conn", "zeek-json": "zeek-conn", "eve-json": "suricata-flow"}
FORMAT_NAMES = {"zeek-tsv": "Zeek TSV", "zeek-json": "Zeek JSON", "eve-json": "Suricata EVE"}


def _sensor_log_hint(paths: Sequence[str]) -> str | None:
    """Without ``--schema`` train runs the KDD reference protocol; a sensor log given so is
    named, with the schema to give (else the KDD reader would call it a bad KDD file)."""
    from trainer.readers import detect_format

    for path in paths:
        try:
            fmt = detect_format(path)
        except (ValueError, *UNREADABLE):
            continue  # not a log (or not readable): the KDD path says what is wrong
        return (
            f"{path} is a {FORMAT_NAMES[fmt]} log: give its schema, --schema "
            f"{SCHEMA_FOR[fmt]} (or a TOML file); without --schema, train runs the KDD Cup '99 "
            "reference protocol"
        )
    return None


def is_site_training(args: argparse.Namespace) -> bool:
    """Sensor schemas and an asked-for alert rate train on site traffic; the KDD schemas (and
    no schema) run the reference protocol."""
    return (
        args.schema is not None and args.schema not in KDD_SCHEMAS
    ) or args.target_alert_rate is not None


def _text(e: BaseException) -> str:
    return e.args[0] if isinstance(e, KeyError) and e.args else str(e)


#: What reading a damaged file raises (gzip, bzip2 and xz are read by their magic bytes):
#: EOFError when it is cut short, OSError (gzip.BadGzipFile, bzip2's "Invalid data stream")
#: on a bad header, CRC or bytes after the end, zlib.error or lzma.LZMAError on corrupt
#: compressed data; OSError also for a file that cannot be opened or read at all.
UNREADABLE = (EOFError, OSError, zlib.error, lzma.LZMAError)
_TOOLS = {"GzipFile": "gzip", "BZ2File": "bzip2", "LZMAFile": "xz"}


def unreadable(e: BaseException, paths: Sequence[str]) -> str:
    """What to print for ``e`` (one of :data:`UNREADABLE`) raised while reading ``paths``:
    ``<file>: <what is wrong>``.  Decompression errors do not name their file, so the files
    are read through again (only now, on the error path) to find the damaged one."""
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"  # Permission denied, Is a directory
    from trainer.readers import open_binary

    for path in paths:
        kind = "file"
        try:
            with open_binary(path) as fh:
                kind = _TOOLS.get(type(fh).__name__, kind)
                while fh.read(1 << 20):
                    pass
        except EOFError:
            return (
                f"{path}: truncated {kind} file: it ends before its end-of-stream marker "
                "(an incomplete copy or download, or a file still being written); copy it again"
            )
        except UNREADABLE as found:
            if isinstance(found, OSError) and found.filename is not None:
                return f"{found.filename}: {found.strerror or found}"
            if kind == "file":
                return f"{path}: cannot be read ({found})"
            return (
                f"{path}: not a readable {kind} file ({found}); check it with "
                f"`{kind} -t {path}` and copy it again"
            )
    return str(e) or type(e).__name__  # not from reading the data files, it seems


def _train_site(args: argparse.Namespace, out: pathlib.Path) -> int:
    from confluent_kafka import KafkaException

    from stream_od.artifact import ArtifactError
    from stream_od.errors import StreamODError
    from stream_od.schema import load_schema
    from trainer.publish import after_train
    from trainer.site import SiteConfig, train_site
    from trainer.train_input import site_records

    if args.schema in (None, *KDD_SCHEMAS):
        print(
            "error: --target-alert-rate trains on sensor logs: give their --schema "
            "(zeek-conn, suricata-flow or a TOML file); the KDD files use the reference "
            "protocol's threshold (--percentile)",
            file=sys.stderr,
        )
        return 2
    cfg = SiteConfig(
        data=args.data or [f"topic:{args.data_topic}"],
        schema=args.schema,
        detector=args.detector,
        target_alert_rate=0.01 if args.target_alert_rate is None else args.target_alert_rate,
        normal_labels=tuple(args.normal_label),
        label_field=args.label_field,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        mixture_components=args.mixture_components,
        ties=args.ties,
        never_varied=args.never_varied or SiteConfig.never_varied,
    )
    try:
        cfg.check()
        load_schema(args.schema)  # a schema that cannot load is named before the data is read
        sample = site_records(args)
        art = train_site(
            cfg,
            sample.records,
            progress=not args.quiet,
            log=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
        art.training["sample"] = sample.to_dict()
        art.save(out)
    except (
        FileNotFoundError,
        KeyError,
        ValueError,
        ArtifactError,
        FloatingPointError,
        KafkaException,
        StreamODError,
    ) as e:
        print(f"error: {_text(e)}", file=sys.stderr)
        return 1
    except UNREADABLE as e:  # a damaged --data file
        print(f"error: {unreadable(e, args.data or [])}", file=sys.stderr)
        return 1
    h = art.metrics["holdout"]
    print(
        json.dumps(
            {
                "artifact": str(out),
                "version": art.version,
                "threshold": art.threshold,
                "fit_seconds": round(art.metrics["fit_seconds"], 2),
                "holdout": {
                    k: h.get(k)
                    for k in (
                        "alert_rate",
                        "alert_rate_interval",
                        "target_alert_rate",
                        "recall",
                        "roc_auc",
                        "pr_auc",
                    )
                },
            }
        )
    )
    try:
        return after_train(args, art, out)
    except (OSError, ValueError, ArtifactError, StreamODError, KafkaException) as e:
        print(f"error: publishing failed: {e}", file=sys.stderr)
        return 1


def _evaluate(args: argparse.Namespace) -> int:
    from stream_od.artifact import ArtifactError
    from trainer.readers import is_sensor_log, read_progress
    from trainer.report import evaluate_artifact, evaluate_logs

    try:
        logs = is_sensor_log(args.data)  # reads each file's first line
        if logs:
            rep = evaluate_logs(
                args.artifact,
                args.data,
                args.out,
                plots=not args.no_plots,
                label_field=args.label_field,
                progress=read_progress("evaluate"),
            )
        elif len(args.data) > 1:
            raise ValueError("KDD-style evaluation reads one file")
        else:
            rep = evaluate_artifact(args.artifact, args.data[0], args.out, plots=not args.no_plots)
    except (FileNotFoundError, KeyError, ValueError, ArtifactError) as e:
        print(f"error: {_text(e)}", file=sys.stderr)
        return 1
    except UNREADABLE as e:  # a damaged --data file
        print(f"error: {unreadable(e, args.data)}", file=sys.stderr)
        return 1
    if logs:
        print(
            json.dumps(
                {
                    k: rep.get(k)
                    for k in (
                        "version",
                        "out_dir",
                        "n_normal",
                        "n_malicious",
                        "alert_rate_normal",
                        "alert_rate_normal_interval",
                        "recall",
                        "roc_auc",
                        "pr_auc",
                    )
                }
            )
        )
        return 0
    summary = {k: rep[k] for k in ("version", "out_dir")}
    for part in ("test_batch", "full"):
        if part in rep:
            summary[part] = {k: rep[part][k] for k in ("n", "f1", "precision", "recall", "auroc")}
    print(json.dumps(summary))
    return 0


def _score(args: argparse.Namespace) -> int:
    from stream_od.artifact import ArtifactError
    from trainer.score import STDOUT, score_file

    try:
        result = score_file(args.artifact, args.data, args.out)
    except (FileNotFoundError, KeyError, ValueError, ArtifactError) as e:
        print(f"error: {_text(e)}", file=sys.stderr)
        return 1
    except UNREADABLE as e:  # a damaged --data file
        print(f"error: {unreadable(e, args.data)}", file=sys.stderr)
        return 1
    print(json.dumps(result), file=sys.stderr if args.out in STDOUT else sys.stdout)
    if result["records"] and result["dead_letters"] == result["records"]:
        print(
            f"warning: all {result['records']:,} records are dead letters (the reasons are in "
            f"{args.out}): is {args.artifact} the model for this data?",
            file=sys.stderr,
        )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a detector and write an artifact directory")
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        metavar="FILE",
        help="the KDD Cup '99 file (reference protocol), or sensor logs (Zeek TSV or "
        "JSON conn logs, Suricata EVE JSON) with --schema; or --data-topic",
    )
    p.add_argument(
        "--schema",
        default=None,
        metavar="NAME|TOML",
        help="feature schema: kdd99 (default for KDD files), kdd99-full, zeek-conn, "
        "suricata-flow, or a TOML file (docs/schemas.md)",
    )
    p.add_argument(
        "--target-alert-rate",
        type=float,
        default=None,
        metavar="RATE",
        help="sensor logs: threshold so that this share of held-out normal traffic "
        "alerts (default 0.01)",
    )
    p.add_argument(
        "--normal-label",
        nargs="+",
        default=["normal", "benign"],
        metavar="L",
        help="label values of normal rows when the data has a label field "
        "(case-insensitive; default: normal benign)",
    )
    p.add_argument(
        "--label-field", default=None, help="the label field (default: the schema's label_fields)"
    )
    p.add_argument(
        "--max-rows",
        type=int,
        default=None,
        metavar="N",
        help="sensor logs: train on at most N of their records (a uniform random sample, "
        "or the N most recent for a schema with traffic windows), read one at a time so "
        f"that memory follows N, not the logs; 0 for all (default {MAX_ROWS:,})",
    )
    p.add_argument(
        "--max-alert-rate",
        type=share,
        default=None,
        metavar="RATE",
        help="quality gate for sensor logs: the held-out alert rate may not exceed "
        "this (default: twice --target-alert-rate)",
    )
    p.add_argument("--detector", choices=DETECTOR_KINDS, default="vaegmm")
    p.add_argument("--out", required=True, help="artifact directory to create")
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="default 50 (KDD); sensor logs: at least 3,000 optimizer steps, 50 epochs at least",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="default 1024 (KDD); sensor logs: a sixteenth of the fit rows, 32 to 1024",
    )
    p.add_argument("--learning-rate", type=positive_float, default=None, help="default 1e-4")
    p.add_argument("--seed", type=non_negative_int, default=0, help="network initialisation seed")
    p.add_argument(
        "--mixture-components",
        type=non_negative_int,
        default=None,
        metavar="K",
        help="scoring mixture: K components refitted by EM on the training codes, "
        "or 0 for the estimation network's (default: vaegmm 12, aegmm 0)",
    )
    p.add_argument(
        "--n-train",
        type=positive_int,
        default=None,
        help="KDD: normal rows drawn (sampler seed 0) for training (default 400,000)",
    )
    p.add_argument(
        "--features",
        nargs="+",
        default=None,
        help="KDD: feature columns (default: the 18 continuous traffic features)",
    )
    p.add_argument(
        "--never-varied",
        choices=NEVER_VARIED,
        default=None,
        help="sensor logs: the scale of a 0/1 column (one-hot, flag, 'was missing') that never "
        "varied in the fit rows: rarest (the default: a change weighs as a value seen once) or "
        "unit (scale 1, as models before 2026-12-07)",
    )
    p.add_argument(
        "--percentile", type=float, default=None, help="KDD: threshold percentile (default 95)"
    )
    p.add_argument(
        "--ties",
        choices=TIE_RULES,
        default="include",
        help="how a duplicate record at the threshold is treated (see docs)",
    )
    p.add_argument(
        "--early-stopping",
        type=non_negative_int,
        default=0,
        metavar="PATIENCE",
        help="stop when the training loss has not improved for PATIENCE epochs",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_train_options(p)
    p.set_defaults(func=_train)

    e = subparsers.add_parser("evaluate", help="evaluate an artifact: report.json + PNG plots")
    e.add_argument("--artifact", required=True)
    e.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="FILE",
        help="a labelled KDD-style file, or labelled sensor logs",
    )
    e.add_argument(
        "--label-field",
        default=None,
        help="sensor logs: the label field (default: the schema's label_fields)",
    )
    e.add_argument("--out", default=None, help="report directory (default: <artifact>-report)")
    e.add_argument("--no-plots", action="store_true")
    e.set_defaults(func=_evaluate)

    sc = subparsers.add_parser("score", help="score a file offline: one JSON line per record")
    sc.add_argument("--artifact", required=True)
    sc.add_argument(
        "--data", required=True, nargs="+", metavar="FILE", help="sensor logs or a KDD-style file"
    )
    sc.add_argument(
        "--out",
        required=True,
        help="JSON-lines output file; - (or /dev/stdout) for standard output, "
        "the summary line then going to standard error",
    )
    sc.set_defaults(func=_score)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
