"""Real traffic: train on one day of a Zeek capture, test on a later day of the same host; and
``kdd99-full`` (all 41 KDD fields) on the KDD reference protocol.

    python benchmarks/zeek_real.py --json /tmp/zeek.json [--quick] [--seeds 0 1 2]
        [--methods vaegmm aegmm mahalanobis iforest] [--holdout-only]
        [--variant NAME KEY=VALUE ...] [--mixture-sweep K ...]
        [--kdd | --kdd-only] [--kdd-seeds 0 1 2] [--kdd-epochs 50] [--kdd-n-train 400000]

Zeek part.  ``--train`` (default ``008-zeek-mixed``) goes through ``trainer.site.train_site``,
so the split and the threshold are the product's: the benign rows cut by time into 70 % fit,
15 % threshold, 15 % validation; the threshold at the ``1 - --target-alert-rate`` quantile
(99th percentile) of the threshold part's scores.  The *holdout* figures are the artifact's own
(``metrics["holdout"]``: the validation benign rows and the training capture's malicious rows).
The *test* figures are on ``--test`` (default ``010-zeek-mixed``, a later day of the same host),
encoded with the artifact's fitted schema, at the artifact's threshold: ROC and PR AUC,
``test_alert_rate`` (share of benign rows alerted on), ``test_recall`` (share of malicious rows
caught), and, to tell ranking from threshold drift, ``test_recall_at_1pct_oracle``: the recall
at the 99th percentile of the *test* benign scores (an oracle threshold no deployment has).
``test_alert_rate_by_direction`` breaks the benign alert rate down by ``local_orig`` ->
``local_resp`` (``L->R`` local to remote, ``L->L``, ...; ``test_alert_rate_local_to_remote`` is
the ``L->R`` share): the training day's benign rows are all ``L->R``, the later day's are not.
Background rows count as unlabelled and are left out.

``iforest`` is scikit-learn's IsolationForest with default hyperparameters and
``random_state=seed``, on the same standardized zeek-conn features (schema vocabularies and
standardizer fitted on the fit part, as ``train_site`` does) and the same split; its threshold
is set the same way (99th percentile of its scores, ``-score_samples``, on the threshold part).

Choosing settings: ``--holdout-only`` never reads the test capture, so settings can be compared
on the training capture's holdout alone.  ``--variant NAME KEY=VALUE ...`` adds a row named
``vaegmm:NAME`` (``detector=aegmm`` for an AEGMM): ``epochs``, ``batch_size``,
``learning_rate``, ``mixture_components`` go to ``SiteConfig``; ``min_count`` rewrites every
categorical's ``min_count`` in a temporary copy of the schema; any other key is a detector
hyperparameter (``latent_dim=4``, ``encoder_units=[32,16,8]``).  ``--mixture-sweep K ...``
refits the scoring mixture of each trained network with K components (0: the estimation
network's) without retraining, re-thresholds on the threshold part, and adds ``NAME-mixK`` rows.

KDD part.  ``trainer.fit.train(TrainConfig(schema="kdd99-full"))`` for each method and
``--kdd-seeds`` (Mahalanobis once: it is deterministic): the protocol's test-batch F1 and ROC
AUC at its threshold (95th percentile of the seed-0 threshold batch, 5 % attacks); on
``corrected.gz`` (encoded with the artifact's schema) ROC AUC, recall, F1 and the normal rows'
alert rate at that threshold; and, for comparison with the Zeek part's 1 % alert target,
``corrected_recall_1pct`` / ``corrected_alert_rate_1pct``: at the 99th percentile (tie rule
``include``) of the scores of the 950 normal rows of that same seed-0 threshold batch (drawn
from the training file), plus the oracle recall at the 99th percentile of corrected.gz's own
normal scores.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.kdd_protocol import IForest, threads  # noqa: E402
from stream_od.detector.threshold import percentile_threshold  # noqa: E402
from stream_od.features import Standardizer, epoch_seconds, unseen_shares  # noqa: E402
from stream_od.records import field_value  # noqa: E402
from stream_od.schema import BUILTIN, FeatureSchema, load_schema  # noqa: E402
from trainer.alert_rate import rate_interval  # noqa: E402
from trainer.labels import MALICIOUS, NORMAL, find_labels  # noqa: E402
from trainer.readers import read_logs  # noqa: E402
from trainer.site import (  # noqa: E402
    SiteConfig,
    encode,
    label_metrics,
    site_matrix,
    train_site,
)

DATA = ROOT.parent / "shared" / "data"
ZEEK = DATA / "zeek"
NETWORKS = ("vaegmm", "aegmm")
SITE_KEYS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "mixture_components",
    "schema",
    "detector",
    "never_varied",
)


# -- the Zeek part ---------------------------------------------------------------------------
@dataclass
class Prepared:
    """The training capture as ``train_site`` cuts it: fitted schema, encoded rows,
    standardizer, and the row indices of each part (rows the schema refused left out)."""

    schema: FeatureSchema
    X: np.ndarray
    std: Standardizer
    parts: dict[str, np.ndarray]
    detail: np.ndarray

    def rows(self, part: str) -> np.ndarray:
        return self.std.transform(self.X[self.parts[part]])


def prepare(cfg: SiteConfig, records: list[dict]) -> Prepared:
    """``train_site``'s steps up to the detector (checked against its artifacts in
    ``run_zeek``)."""
    schema = load_schema(cfg.schema)
    labels = find_labels(
        records, schema, label_field=cfg.label_field, normal_labels=cfg.normal_labels
    )
    m = site_matrix(cfg, records, schema, labels)
    return Prepared(schema=m.schema, X=m.X, std=m.std, parts=m.parts, detail=labels.detail)


@dataclass
class LaterCapture:
    records: list[dict]
    path: str
    _cache: dict

    def unseen_share(self, schema: FeatureSchema) -> dict[str, float]:
        """``unseen_shares`` of the benign rows (call after :meth:`metrics`)."""
        X, normal = self._cache[_schema_key(schema)][:2]
        return unseen_shares(X[normal], schema)

    def metrics(
        self,
        schema: FeatureSchema,
        score: Callable[[np.ndarray], np.ndarray],
        threshold: float,
        percentile: float,
    ) -> dict[str, Any]:
        """What ``trainer.report.evaluate_logs`` reports, with the ``test_`` prefix."""
        key = _schema_key(schema)
        if key not in self._cache:
            labels = find_labels(self.records, schema)
            X, refused = encode(self.records, schema)
            ok = np.ones(len(self.records), dtype=bool)
            ok[list(refused)] = False
            direction = np.array([_direction(r) for r in self.records], dtype=object)
            self._cache[key] = (
                X,
                ok & (labels.kind == NORMAL),
                ok & (labels.kind == MALICIOUS),
                labels.detail,
                len(refused),
                direction,
                _hours(self.records, schema.time_field),
            )
        X, normal, malicious, detail, n_refused, direction, hours = self._cache[key]
        s = score(X[normal | malicious])
        sn, sm = s[normal[normal | malicious]], s[malicious[normal | malicious]]
        m = label_metrics(sn, sm, threshold, detail[malicious])
        oracle = percentile_threshold(sn, percentile)
        dn = direction[normal]
        by_direction = {
            str(d): {
                "n": int(np.sum(dn == d)),
                "alert_rate": float(np.mean(sn[dn == d] > threshold)),
            }
            for d in sorted(set(dn.tolist()))
        }
        alerted = sn > threshold
        hn = hours[normal]
        by_hour = [
            {
                "hour": int(h),
                "n": int(np.sum(hn == h)),
                "alert_rate": float(np.mean(alerted[hn == h])),
            }
            for h in np.unique(hn[hn >= 0])
        ]
        return {
            "test_roc_auc": m.get("roc_auc"),
            "test_pr_auc": m.get("pr_auc"),
            "test_alert_rate": m["alert_rate_normal"],
            "test_alert_rate_interval": list(rate_interval(int(alerted.sum()), alerted.size)),
            "test_alert_rate_by_hour": by_hour,
            "test_recall": m.get("recall"),
            "test_precision": m.get("precision"),
            "test_f1": m.get("f1"),
            "test_recall_at_1pct_oracle": float(np.mean(sm > oracle)) if sm.size else None,
            "test_n_normal": m["n_normal"],
            "test_n_malicious": m["n_malicious"],
            "test_refused": n_refused,
            "test_recall_by_detail": m.get("recall_by_detail", {}),
            "test_alert_rate_by_direction": by_direction,
            "test_alert_rate_local_to_remote": by_direction.get("L->R", {}).get("alert_rate"),
        }


def _schema_key(schema: FeatureSchema) -> str:
    """A fitted schema as a cache key (each artifact encodes the capture with its own)."""
    return json.dumps(schema.to_dict(), sort_keys=True)


def _hours(records: list[dict], time_field: str | None) -> np.ndarray:
    """Whole hours from the capture's first record to each record (the schema's time field,
    Zeek's ``ts``); -1 where a record has no time.  The benign alert rate hour by hour shows
    drift as the capture goes on."""
    seconds = [epoch_seconds(field_value(r, time_field)) if time_field else None for r in records]
    ts = np.array([np.nan if t is None else t for t in seconds], dtype=float)
    out = np.full(ts.size, -1, dtype=np.int64)
    if np.isfinite(ts).any():
        known = np.isfinite(ts)
        out[known] = ((ts[known] - ts[known].min()) // 3600).astype(np.int64)
    return out


def _direction(record: dict) -> str:
    """``local_orig``/``local_resp`` as ``"L->R"`` (local to remote), ``"L->L"``, ...: the
    benign alert rate broken down by it shows traffic of a kind the training day never had."""

    def side(key):
        v = record.get(key)
        return "?" if v is None else ("L" if v else "R")

    return f"{side('local_orig')}->{side('local_resp')}"


def holdout_row(h: dict[str, Any]) -> dict[str, Any]:
    return {
        "holdout_roc_auc": h.get("roc_auc"),
        "holdout_pr_auc": h.get("pr_auc"),
        "holdout_alert_rate": h["alert_rate"],
        "holdout_recall": h.get("recall"),
        "holdout_n_normal": h["n_normal"],
        "holdout_n_malicious": h["n_malicious"],
    }


def own_holdout(
    prep: Prepared, score: Callable[[np.ndarray], np.ndarray], threshold: float
) -> dict[str, Any]:
    malicious = prep.rows("malicious")  # none where the capture has no attacks
    h = label_metrics(
        score(prep.rows("validation")),
        score(malicious) if len(malicious) else np.empty(0),
        threshold,
        prep.detail[prep.parts["malicious"]],
    )
    h["alert_rate"] = h.pop("alert_rate_normal")
    return h


def schema_text(base: str) -> str:
    """The TOML text of a schema: a built-in one by name, or a file."""
    if base in BUILTIN:
        return (
            resources.files("stream_od.schema").joinpath(f"builtin/{base}.toml").read_text("utf-8")
        )
    return pathlib.Path(base).read_text("utf-8")


def schema_with_min_count(base: str, min_count: int, workdir: pathlib.Path) -> str:
    """A copy of a schema (built-in name or TOML path) with every categorical's
    ``min_count`` replaced, written to a TOML file in ``workdir``; returns its path."""
    text = schema_text(base)
    name = load_schema(base).name
    text = re.sub(r"(?m)^min_count = \d+$", f"min_count = {int(min_count)}", text)
    text = re.sub(
        r'(?m)^name = "' + re.escape(name) + '"$',
        f'name = "{name}-min{int(min_count)}"',
        text,
        count=1,
    )
    path = workdir / f"{name}-min{int(min_count)}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def parse_variant(words: list[str]) -> tuple[str, dict[str, Any]]:
    name, options = words[0], {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise SystemExit(f"--variant {name}: {word!r} is not KEY=VALUE")
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            v = value
        options[key] = tuple(v) if isinstance(v, list) else v
    return name, options


def site_config(
    args, method: str, seed: int, options: dict[str, Any], workdir: pathlib.Path
) -> SiteConfig:
    options = dict(options)
    site = {k: options.pop(k) for k in SITE_KEYS if k in options}
    site.setdefault("detector", method)
    site.setdefault("schema", args.schema)
    min_count = options.pop("min_count", args.min_count)
    if min_count is not None:
        site["schema"] = schema_with_min_count(site["schema"], min_count, workdir)
    if args.quick and site["detector"] in NETWORKS:
        site.setdefault("epochs", args.quick_epochs)
    return SiteConfig(
        data=[args.train],
        seed=seed,
        target_alert_rate=args.target_alert_rate,
        detector_options=options,
        **site,
    )


def zeek_runs(args) -> list[tuple[str, dict[str, Any], list[int]]]:
    """(row name, options, seeds) in run order."""
    runs = []
    for method in args.methods:
        seeds = args.seeds if method in NETWORKS or method == "iforest" else args.seeds[:1]
        runs.append((method, {}, seeds))
    for words in args.variant or []:
        name, options = parse_variant(words)
        runs.append((f"{options.get('detector', 'vaegmm')}:{name}", options, args.seeds))
    return runs


def run_zeek(
    args, records: list[dict] | None = None, test_records: list[dict] | None = None
) -> dict[str, Any]:
    """Every method and seed on ``args.train`` (or ``records``, e.g. a capture's first hours),
    tested on ``args.test`` (or ``test_records``) unless ``--holdout-only``."""
    if records is None:
        records = read_logs([args.train]).records
    test = None
    if not args.holdout_only:
        if test_records is None:
            test_records = read_logs([args.test]).records
        test = LaterCapture(test_records, args.test, {})
    percentile = 100.0 * (1.0 - args.target_alert_rate)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="zeek_real_"))
    prepared: dict[str, Prepared] = {}
    rows: list[dict[str, Any]] = []

    def finish(row, schema, score, threshold):
        if test is not None:
            row.update(test.metrics(schema, score, threshold, percentile))
        rows.append(row)
        _print_row(row)

    for name, options, seeds in zeek_runs(args):
        for seed in seeds:
            method = options.get("detector", name.split(":")[0])
            cfg = site_config(args, method, seed, options, workdir)
            key = f"{cfg.schema} {cfg.never_varied}"
            if key not in prepared:
                prepared[key] = prepare(cfg, records)
            prep = prepared[key]
            config = dict(options)
            if cfg.epochs:
                config["epochs"] = cfg.epochs
            if args.min_count is not None:
                config.setdefault("min_count", args.min_count)
            base = {"method": name, "seed": seed, "config": config}
            if method == "iforest":
                det = IForest(seed)
                t0 = time.perf_counter()
                det.fit(prep.rows("fit"))
                fit_s = time.perf_counter() - t0
                thr = percentile_threshold(
                    det.score(prep.rows("threshold")), percentile, ties=cfg.ties
                )
                h = own_holdout(prep, det.score, thr)
                row = {
                    **base,
                    "fit_seconds": fit_s,
                    "threshold": thr,
                    "threshold_alert_rate": float(np.mean(det.score(prep.rows("threshold")) > thr)),
                    **holdout_row(h),
                }
                finish(row, prep.schema, lambda X, d=det, p=prep: d.score(p.std.transform(X)), thr)
                continue
            art = train_site(cfg, records, progress=False, log=lambda *a, **k: None)
            _check_same_split(art, prep)
            row = {
                **base,
                "fit_seconds": art.metrics["fit_seconds"],
                "threshold": art.threshold,
                "threshold_alert_rate": art.metrics["threshold_alert_rate"],
                **holdout_row(art.metrics["holdout"]),
            }
            if method in NETWORKS:
                params = art.training["detector_params"]
                row.update(
                    {
                        "epochs": params["epochs"],
                        "batch_size": params["batch_size"],
                        "mixture_components": int(art.detector.phi_.shape[0]),
                    }
                )
            finish(row, art.schema, art.score, art.threshold)
            if method in NETWORKS:
                for k in args.mixture_sweep or []:
                    det = art.detector
                    if k == det.mixture_components:
                        continue
                    det.mixture_components = int(k)
                    det.fit_mixture(prep.rows("fit"))
                    det.infer_threshold(prep.rows("threshold"), percentile, ties=cfg.ties)
                    h = own_holdout(prep, det.score, det.threshold_)
                    sweep = {
                        **base,
                        "method": f"{name}-mix{k}",
                        "mixture_components": int(det.phi_.shape[0]),
                        "threshold": det.threshold_,
                        **holdout_row(h),
                    }
                    finish(sweep, art.schema, art.score, det.threshold_)
    any_prep = next(iter(prepared.values()))
    held = np.concatenate([any_prep.parts["threshold"], any_prep.parts["validation"]])
    return {
        # values of each categorical the fit rows did not have (what the worker counts)
        "unseen_share": {
            "training_held_out": unseen_shares(any_prep.X[held], any_prep.schema),
            "test_normal": None if test is None else test.unseen_share(any_prep.schema),
        },
        "train": args.train,
        "test": None if test is None else args.test,
        "percentile": percentile,
        "rows_by_part": {k: int(v.size) for k, v in any_prep.parts.items()},
        "schema": any_prep.schema.name,
        "n_features": len(any_prep.schema),
        "rows": rows,
    }


def _check_same_split(art, prep: Prepared) -> None:
    """The baseline's split and features must be the product's: same features, and the
    artifact's holdout recomputed on our split gives its own figures."""
    if tuple(art.feature_names) != tuple(prep.schema.feature_names):
        raise AssertionError("train_site fitted other features than the benchmark's split")
    h = own_holdout(prep, lambda Xs: art.detector.score(Xs), art.threshold)
    mine, theirs = h, art.metrics["holdout"]
    same = [abs(mine[k] - theirs[k]) <= 1e-9 for k in ("alert_rate", "roc_auc") if k in theirs]
    if (mine["n_normal"], mine["n_malicious"]) != (
        theirs["n_normal"],
        theirs["n_malicious"],
    ) or not all(same):
        raise AssertionError(f"split differs from train_site's: {mine} vs {theirs}")


# -- the KDD part ----------------------------------------------------------------------------
def run_kdd(args) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    from trainer.data import Batch, create_outlier_batch, frame_values, load_records
    from trainer.evaluate import classification_metrics
    from trainer.fit import TrainConfig, train

    df = load_records(args.kdd_train_data)
    index = Batch(
        X=np.arange(len(df), dtype=np.float64)[:, None],
        y=df["target"].to_numpy(np.int64),
        attack=df["attack"].to_numpy(object),
        feature_names=("row",),
    )
    thr_batch = create_outlier_batch(index, 1000, 5, seed=0)  # the protocol's threshold batch
    thr_normal = df.iloc[thr_batch.X[thr_batch.y == 0, 0].astype(np.int64)]
    cor = load_records(args.kdd_corrected_data)
    y_cor = cor["target"].to_numpy(np.int64)
    cache: dict[str, np.ndarray] = {}

    def matrix(art, frame, tag):
        key = tag + json.dumps(art.schema.to_dict(), sort_keys=True)
        if key not in cache:
            enc = art.encoder.encode(frame_values(frame, art.schema), len(frame))
            if enc.rejected:
                raise ValueError(f"{tag}: {len(enc.rejected)} rows refused by the schema")
            cache[key] = enc.X
        return cache[key]

    rows = []
    for method in args.kdd_methods:
        seeds = args.kdd_seeds if method in NETWORKS else args.kdd_seeds[:1]
        for seed in seeds:
            cfg = TrainConfig(
                data=args.kdd_train_data,
                detector=method,
                seed=seed,
                n_train=args.kdd_n_train,
                schema=args.kdd_schema,
                epochs=args.kdd_epochs if method in NETWORKS else None,
            )
            art = train(cfg, progress=False)
            tb = art.metrics["test_batch"]
            s_cor = art.score(matrix(art, cor, "corrected"))
            mc = classification_metrics(y_cor, s_cor, art.threshold)
            thr1 = percentile_threshold(art.score(matrix(art, thr_normal, "thr-normal")), 99)
            oracle = percentile_threshold(s_cor[y_cor == 0], 99)
            row = {
                "method": method,
                "seed": seed,
                "n_features": len(art.schema),
                "n_train": args.kdd_n_train,
                "fit_seconds": art.metrics["fit_seconds"],
                "epochs": art.metrics.get("epochs_run"),
                "threshold": art.threshold,
                "test_f1": tb["f1"],
                "test_precision": tb["precision"],
                "test_recall": tb["recall"],
                "test_roc_auc": tb["auroc"],
                "corrected_roc_auc": mc["auroc"],
                "corrected_pr_auc": float(average_precision_score(y_cor, s_cor)),
                "corrected_recall": mc["recall"],
                "corrected_f1": mc["f1"],
                "corrected_alert_rate": float(np.mean(s_cor[y_cor == 0] > art.threshold)),
                "threshold_1pct": thr1,
                "corrected_recall_1pct": float(np.mean(s_cor[y_cor == 1] > thr1)),
                "corrected_alert_rate_1pct": float(np.mean(s_cor[y_cor == 0] > thr1)),
                "corrected_recall_at_1pct_oracle": float(np.mean(s_cor[y_cor == 1] > oracle)),
            }
            rows.append(row)
            _print_row(row)
    return {
        "train": args.kdd_train_data,
        "corrected": args.kdd_corrected_data,
        "schema": args.kdd_schema,
        "rows": rows,
    }


# -- output ----------------------------------------------------------------------------------
def _print_row(row: dict) -> None:
    print(
        json.dumps(
            {
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in row.items()
                if "_by_" not in k
            }
        ),
        flush=True,
    )


LOWER_IS_BETTER = ("alert_rate", "fit_seconds")

ZEEK_COLUMNS = [
    ("test_roc_auc", "test ROC"),
    ("test_pr_auc", "test PR"),
    ("test_alert_rate", "test alert"),
    ("test_recall", "test recall"),
    ("test_recall_at_1pct_oracle", "test rec@1%or"),
    ("test_alert_rate_local_to_remote", "test alert L>R"),
    ("holdout_roc_auc", "hold ROC"),
    ("holdout_pr_auc", "hold PR"),
    ("holdout_alert_rate", "hold alert"),
    ("holdout_recall", "hold recall"),
    ("fit_seconds", "fit s"),
]
KDD_COLUMNS = [
    ("test_f1", "test F1"),
    ("test_roc_auc", "test ROC"),
    ("corrected_roc_auc", "corr ROC"),
    ("corrected_recall", "corr recall"),
    ("corrected_alert_rate", "corr alert"),
    ("corrected_recall_1pct", "corr rec@1%"),
    ("corrected_alert_rate_1pct", "corr alert@1%"),
    ("corrected_recall_at_1pct_oracle", "corr rec@1%or"),
    ("fit_seconds", "fit s"),
]


def unseen_table(unseen: dict[str, dict[str, float] | None]) -> str:
    """Per categorical field, the share of unseen values on the training capture's held-out
    benign rows and on the test capture's benign rows."""
    parts = {k: v for k, v in unseen.items() if v}
    if not parts:
        return ""
    lines = ["unseen values (share of benign rows): " + " / ".join(parts)]
    for name in next(iter(parts.values())):
        cells = " / ".join(f"{100 * v[name]:.1f} %" for v in parts.values())
        lines.append(f"  {name:12s} {cells}")
    return "\n".join(lines)


def summary_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Median and worst (lowest quality, highest alert rate or time) per method."""
    lines = [f"{'method':22s} {'n':>2s} {'stat':6s} " + " ".join(f"{h:>13s}" for _, h in columns)]
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        for stat in ("median", "worst"):
            vals = []
            for c, _ in columns:
                xs = [r[c] for r in rs if r.get(c) is not None]
                if not xs:
                    vals.append(f"{'-':>13s}")
                    continue
                if stat == "median":
                    v = statistics.median(xs)
                else:
                    v = max(xs) if any(t in c for t in LOWER_IS_BETTER) else min(xs)
                vals.append(f"{v:13.4f}" if abs(v) < 1e4 else f"{v:13.0f}")
            lines.append(f"{method:22s} {len(rs):2d} {stat:6s} " + " ".join(vals))
    return "\n".join(lines)


def add_variant_option(p: argparse.ArgumentParser) -> None:
    """``--variant NAME KEY=VALUE ...``, what :func:`zeek_runs` reads."""
    p.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar="NAME KEY=VALUE",
        help="an extra configuration (VAEGMM unless detector=...); repeatable",
    )


def parser(description: str = __doc__) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", required=True, help="write the rows here")
    p.add_argument(
        "--quick",
        action="store_true",
        help="first seed only; Zeek networks 5 epochs; KDD 20,000 training rows, 2 epochs",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="*", default=["vaegmm", "aegmm", "mahalanobis", "iforest"])
    add_variant_option(p)
    p.add_argument(
        "--mixture-sweep",
        type=int,
        nargs="+",
        metavar="K",
        help="also score each trained network with a K-component scoring mixture",
    )
    p.add_argument(
        "--holdout-only",
        action="store_true",
        help="never read the test capture (for choosing settings)",
    )
    p.add_argument("--schema", default="zeek-conn", help="built-in schema name or TOML path")
    p.add_argument(
        "--history-letters",
        action="store_true",
        help="read Zeek's history as one boolean per letter (S, s, H, h, ..., ^) instead of "
        "one-hot over whole strings (docs/zeek-results.md)",
    )
    p.add_argument(
        "--min-count",
        type=int,
        metavar="N",
        help="every method: a copy of the schema with each categorical's min_count set to N",
    )
    p.add_argument("--target-alert-rate", type=float, default=0.01)
    p.add_argument("--train", default=str(ZEEK / "008-zeek-mixed.conn.log.labeled"))
    p.add_argument("--test", default=str(ZEEK / "010-zeek-mixed.conn.log.labeled"))
    p.add_argument("--kdd", action="store_true", help="also run the KDD part")
    p.add_argument("--kdd-only", action="store_true", help="run the KDD part alone")
    p.add_argument("--kdd-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--kdd-epochs", type=int, default=50)
    p.add_argument("--kdd-n-train", type=int, default=400_000)
    p.add_argument("--kdd-methods", nargs="+", default=["vaegmm", "aegmm", "mahalanobis"])
    p.add_argument("--kdd-train-data", default=str(DATA / "kddcup.data_10_percent.gz"))
    p.add_argument("--kdd-corrected-data", default=str(DATA / "corrected.gz"))
    p.add_argument("--kdd-schema", default="kdd99-full")
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = p.parse_args(argv)
    args.quick_epochs = 5
    if args.quick:
        args.seeds, args.kdd_seeds = args.seeds[:1], args.kdd_seeds[:1]
        args.kdd_n_train, args.kdd_epochs = 20_000, 2
    return args


#: Zeek's history letters (base/protocols/conn/main.zeek): upper case from the originator
HISTORY_LETTERS = [c for x in "shadfrcgtwiq" for c in (x.upper(), x)] + ["^"]


def letter_column(c: str) -> str:
    return "hist_" + ("flip" if c == "^" else ("up_" if c.isupper() else "lo_") + c.lower())


def with_history_letters(records: list[dict]) -> list[dict]:
    """``--history-letters``: each record with one boolean per history letter it holds
    (unset history: none), for a schema that reads those instead of the whole string."""
    out = []
    for r in records:
        h = r.get("history")
        extra = {letter_column(c): c in h for c in HISTORY_LETTERS} if isinstance(h, str) else {}
        out.append({**r, **extra})
    return out


def schema_with_history_letters(base: str, workdir: pathlib.Path) -> str:
    """A copy of ``base`` (built-in name or TOML path) whose categorical ``history`` is
    replaced by one boolean per letter (default false), appended after the other fields;
    written to ``workdir``, returns its path."""
    text = schema_text(base)
    head, *fields = text.split("[[fields]]")
    kept = [f for f in fields if not re.search(r'(?m)^name = "history"$', f)]
    if len(kept) != len(fields) - 1:
        raise SystemExit(f"--history-letters: schema {base!r} has no history field")
    letters = "".join(
        f'[[fields]]\nname = "{letter_column(c)}"\nkind = "boolean"\nmissing = "default"\n'
        "default = false\n\n"
        for c in HISTORY_LETTERS
    )
    name = load_schema(base).name
    head = head.replace(f'name = "{name}"', f'name = "{name}-letters"', 1)
    path = workdir / f"{name}-letters.toml"
    path.write_text(head + "".join("[[fields]]" + f for f in kept) + letters, encoding="utf-8")
    return str(path)


def main(argv=None) -> int:
    args = parse(parser(), argv)
    out: dict[str, Any] = {"config": dict(vars(args)), "threads": threads()}
    tables = []
    if not args.kdd_only:
        records = tests = None
        if args.history_letters:
            args.schema = schema_with_history_letters(
                args.schema, pathlib.Path(tempfile.mkdtemp(prefix="zeek_letters_"))
            )
            records = with_history_letters(read_logs([args.train]).records)
            if not args.holdout_only:
                tests = with_history_letters(read_logs([args.test]).records)
        out["zeek"] = run_zeek(args, records, tests)
        tables.append(
            f"Zeek: train {pathlib.Path(args.train).name}, test "
            f"{pathlib.Path(args.test).name if out['zeek']['test'] else '(not read)'}, "
            f"{args.target_alert_rate:.0%} alert target\n"
            + summary_table(out["zeek"]["rows"], ZEEK_COLUMNS)
            + "\n"
            + unseen_table(out["zeek"]["unseen_share"])
        )
    if args.kdd or args.kdd_only:
        out["kdd"] = run_kdd(args)
        tables.append(
            f"KDD reference protocol, {args.kdd_schema}, {args.kdd_n_train:,} training rows, "
            f"{args.kdd_epochs} epochs\n" + summary_table(out["kdd"]["rows"], KDD_COLUMNS)
        )
    pathlib.Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
