"""Fit a detector on a site's own traffic (Zeek conn logs, Suricata EVE flows), labelled or not.

The KDD reference protocol needs labelled attacks to set its threshold; a site's traffic has
none.  Here the threshold comes from the alert rate the operator asks for:

1. read the logs (``trainer.readers``), in event-time order;
2. keep the normal rows: those labelled benign/normal when a label field exists (other labels
   are kept apart for the report), every row otherwise;
3. split the normal rows by time: the first ``fit_share`` fit the schema's vocabularies, the
   standardizer and the detector; the next ``threshold_share`` set the threshold at the
   ``1 - target_alert_rate`` quantile of their scores; the last rows, never seen by either,
   measure the alert rate the model will really have (the quality gate), and with the
   malicious rows, ROC AUC and recall when labels exist.

Splitting by time, not at random, is what makes the held-out rate honest: traffic drifts, and
the model will score tomorrow's traffic, not a shuffled sample of today's.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from stream_od.artifact import Artifact
from stream_od.detector import detector_class
from stream_od.features import (
    NEVER_VARIED,
    Standardizer,
    absent_fields,
    fit_schema,
    missing_shares,
    unseen_shares,
)
from stream_od.records import RecordDecoder, field_values, select_records
from stream_od.schema import FeatureSchema, load_schema
from trainer.alert_rate import describe, rate_interval, rows_needed
from trainer.labels import MALICIOUS, NORMAL, NORMAL_LABELS, Labels, find_labels

MIN_FIT_ROWS = 200


@dataclass
class SiteConfig:
    data: Sequence[str]
    schema: str = "zeek-conn"
    detector: str = "vaegmm"
    target_alert_rate: float = 0.01
    fit_share: float = 0.7
    threshold_share: float = 0.15
    normal_labels: Sequence[str] = NORMAL_LABELS
    label_field: str | None = None
    seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    mixture_components: int | None = None
    ties: str = "include"
    #: the scale of a 0/1 column that never varied in the fit rows (one of
    #: :data:`~stream_od.features.NEVER_VARIED`; docs/zeek-results.md)
    never_varied: str = NEVER_VARIED[0]
    detector_options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.never_varied not in NEVER_VARIED:
            raise ValueError(
                f"never_varied must be one of {NEVER_VARIED}, not {self.never_varied!r}"
            )
        if not 0.0 < self.target_alert_rate < 0.5:
            raise ValueError("--target-alert-rate must be in (0, 0.5), e.g. 0.01 for 1 %")
        if not (
            0 < self.fit_share < 1
            and 0 < self.threshold_share < 1
            and self.fit_share + self.threshold_share < 1
        ):
            raise ValueError(
                "fit_share and threshold_share must be in (0, 1) and leave rows for validation"
            )


@dataclass(frozen=True)
class Split:
    """Row indices (into the records) of each part, in time order."""

    fit: np.ndarray
    threshold: np.ndarray
    validation: np.ndarray
    malicious: np.ndarray


def time_split(labels: Labels, cfg: SiteConfig) -> Split:
    """The normal rows cut by time into fit / threshold / validation (records are already in
    event-time order); the malicious rows apart."""
    normal = np.flatnonzero(labels.kind == NORMAL)
    n = normal.size
    n_fit = int(n * cfg.fit_share)
    n_thr = int(n * cfg.threshold_share)
    if n_fit < MIN_FIT_ROWS or n_thr < 1 or n - n_fit - n_thr < 1:
        raise ValueError(
            f"{n} normal rows is too few to fit, threshold and validate "
            f"(need at least {math.ceil(MIN_FIT_ROWS / cfg.fit_share)})"
        )
    return Split(
        fit=normal[:n_fit],
        threshold=normal[n_fit : n_fit + n_thr],
        validation=normal[n_fit + n_thr :],
        malicious=np.flatnonzero(labels.kind == MALICIOUS),
    )


def network_params(cfg: SiteConfig, n_fit: int) -> dict[str, Any]:
    """Hyperparameters of a neural detector for ``n_fit`` training rows.

    A site's training window is often thousands of rows, not the reference protocol's 400,000:
    with the protocol's 1,024-row batches and 50 epochs a network would take 50 steps.  The
    batch is a sixteenth of the rows (32 to 1,024), and the epochs give at least 3,000
    optimizer steps (50 at least).  Chosen a priori, not on any test capture; every value can
    be set on the command line.
    """
    batch = cfg.batch_size or int(min(1024, max(32, n_fit // 16)))
    steps = -(-n_fit // batch)
    epochs = cfg.epochs or int(max(50, math.ceil(3000 / steps)))
    params: dict[str, Any] = {"seed": int(cfg.seed), "epochs": epochs, "batch_size": batch}
    if cfg.learning_rate is not None:
        params["learning_rate"] = cfg.learning_rate
    if cfg.mixture_components is not None:
        params["mixture_components"] = cfg.mixture_components
    return params


def label_metrics(
    scores_normal: np.ndarray,
    scores_malicious: np.ndarray,
    threshold: float,
    detail: np.ndarray | None = None,
) -> dict[str, Any]:
    """What a SOC asks of a threshold on labelled rows: the share of benign rows it alerts on,
    the share of malicious rows it catches (overall and per detailed label), ROC and PR AUC."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, Any] = {
        "n_normal": int(scores_normal.size),
        "n_malicious": int(scores_malicious.size),
        "threshold": float(threshold),
        "alert_rate_normal": float(np.mean(scores_normal > threshold))
        if scores_normal.size
        else None,
    }
    if scores_malicious.size:
        hit = scores_malicious > threshold
        out["recall"] = float(np.mean(hit))
        if detail is not None:
            out["recall_by_detail"] = {
                str(d): {"n": int(np.sum(detail == d)), "recall": float(np.mean(hit[detail == d]))}
                for d in sorted(set(detail.tolist()))
            }
        tp, fp = int(hit.sum()), int(np.sum(scores_normal > threshold))
        out["precision"] = tp / (tp + fp) if tp + fp else 0.0
        out["f1"] = 2 * tp / (2 * tp + fp + int((~hit).sum()))
    if scores_normal.size and scores_malicious.size:
        y = np.r_[np.zeros(scores_normal.size), np.ones(scores_malicious.size)]
        s = np.r_[scores_normal, scores_malicious]
        out["roc_auc"] = float(roc_auc_score(y, s))
        out["pr_auc"] = float(average_precision_score(y, s))
        out["auroc"] = out["roc_auc"]  # the name the reference protocol's gate reads
    return out


def rate_sureness(
    thr_scores: np.ndarray, val_scores: np.ndarray, threshold: float, cfg: SiteConfig, *, log=print
) -> dict[str, Any]:
    """How sure the alert rate is (:mod:`trainer.alert_rate`): the 95 % intervals of the rate
    over the threshold on the threshold part and on the validation part, and how many rows each
    part needs to pin the target within the gate's default tolerance (twice the target).  Says
    so when a part is short of that: more traffic, not another seed, is the fix."""
    target = cfg.target_alert_rate
    needed = rows_needed(target, 2 * target)
    out: dict[str, Any] = {"alert_rate_rows_needed": needed}
    for name, s in (("threshold", thr_scores), ("validation", val_scores)):
        k = int(np.sum(s > threshold))
        out[f"{name}_interval"] = list(rate_interval(k, s.size))
        log(f"train: alert rate on the {name} part: {describe(k, s.size)}")
    val_share = 1.0 - cfg.fit_share - cfg.threshold_share
    short = [
        f"{name} {s.size:,}"
        for name, s in (("threshold", thr_scores), ("validation", val_scores))
        if s.size < needed
    ]
    if short:
        log(
            f"train: warning: too few normal rows to pin a {100 * target:g} % alert rate "
            f"within {100 * 2 * target:g} % ({', '.join(short)} rows; each part needs about "
            f"{needed:,}, so about {math.ceil(needed / min(cfg.threshold_share, val_share)):,} "
            "normal rows in all): the rate on new traffic may be far from the target. Train on "
            "a longer window of traffic."
        )
    out["threshold_alert_rate_interval"] = out.pop("threshold_interval")
    return out


def encode(records: Sequence[dict], schema: FeatureSchema) -> tuple[np.ndarray, dict[int, str]]:
    """The records' matrix through the schema (the worker's code, window features included,
    computed over ``records`` in the order given), and the rows it refused."""
    enc = RecordDecoder(schema).encode_records(records)
    return enc.X, {r: reason for r, (reason, _) in enc.rejected.items()}


def selected(records: Sequence[dict], schema: FeatureSchema) -> tuple[list[dict], int]:
    """The records ``schema`` is for, and how many others were skipped: the worker skips the
    same ones (:mod:`stream_od.schema.select`), so a model never learns from a ``stats`` event
    or a dns log record that it would never be asked to score."""
    _, kept, skipped = select_records(list(range(len(records))), list(records), schema)
    return kept, len(skipped)


def schema_select(schema: FeatureSchema) -> str:
    spec = schema.select
    return "" if spec is None else f"{spec.field} not in {list(spec.values)}"


@dataclass
class SiteMatrix:
    """The records as site training cuts them, up to the detector: what ``train_site`` fits on
    and ``benchmarks/zeek_real.py`` rebuilds for its baselines (one function, so the two
    cannot cut them differently)."""

    schema: FeatureSchema  # its vocabularies fitted on the fit rows
    X: np.ndarray  # every record encoded (a refused one's row is not used)
    refused: dict[int, str]  # row -> why the schema refused it
    parts: dict[str, np.ndarray]  # time_split's parts, refused rows left out
    absent: tuple[str, ...]  # the fields no fit record carries
    std: Standardizer  # fitted on the fit rows


def site_matrix(
    cfg: SiteConfig, records: Sequence[dict], schema: FeatureSchema, labels: Labels
) -> SiteMatrix:
    """Split by time, fit the schema's vocabularies and the standardizer on the fit rows,
    encode every record.  The standardizer gives the 0/1 columns that never varied in the fit
    rows ``cfg.never_varied``'s scale, and holds the columns of the fields no fit record
    carried at their training value (:func:`~stream_od.features.absent_fields`)."""
    split = time_split(labels, cfg)
    fit_columns = field_values([records[i] for i in split.fit], schema)
    absent = absent_fields(schema, fit_columns)
    schema = fit_schema(schema, fit_columns)
    X, refused = encode(records, schema)
    ok = np.ones(len(records), dtype=bool)
    ok[list(refused)] = False
    parts = {name: idx[ok[idx]] for name, idx in asdict(split).items()}
    binary = schema.binary_columns if cfg.never_varied == "rarest" else ()
    std = Standardizer().fit(X[parts["fit"]], binary=binary, held=schema.columns_of(absent))
    return SiteMatrix(schema, X, refused, parts, absent, std)


def train_site(
    cfg: SiteConfig, records: Sequence[dict], *, progress: bool = True, log=print
) -> Artifact:
    """Fit, threshold and validate on ``records`` (in event-time order); see the module doc."""
    from trainer.fit import fit_detector
    from trainer.report import check_columns

    cfg.check()
    schema = load_schema(cfg.schema)
    records, skipped = selected(records, schema)
    if skipped:
        log(f"train: {skipped:,} records of another kind skipped ({schema_select(schema)})")
    check_columns(schema, records, cfg.data)  # before the fit names one field as if mistyped
    labels = find_labels(
        records, schema, label_field=cfg.label_field, normal_labels=cfg.normal_labels
    )
    m = site_matrix(cfg, records, schema, labels)
    schema, X, refused, parts, std = m.schema, m.X, m.refused, m.parts, m.std
    source = f"labels in {labels.field!r}" if labels.labelled else "unlabelled: all taken as normal"
    log(
        f"train: {len(records):,} records ({source}); normal rows by time: "
        f"{parts['fit'].size:,} fit, {parts['threshold'].size:,} threshold, "
        f"{parts['validation'].size:,} validation; {parts['malicious'].size:,} malicious kept "
        f"for the report; {len(refused):,} refused by the schema"
    )

    if m.absent:
        log(
            f"train: no fit record has {', '.join(m.absent)}: held at the training value when "
            "scored, so a sensor that starts writing them moves no score (retrain on traffic "
            "that has them to use them)"
        )
    params = {} if cfg.detector == "mahalanobis" else network_params(cfg, parts["fit"].size)
    params.update(cfg.detector_options)
    det = detector_class(cfg.detector)(**params)
    t0 = time.perf_counter()
    fit_detector(det, std.transform(X[parts["fit"]]), progress=progress)
    fit_seconds = time.perf_counter() - t0
    percentile = 100.0 * (1.0 - cfg.target_alert_rate)
    det.infer_threshold(std.transform(X[parts["threshold"]]), percentile, ties=cfg.ties)
    threshold = cast(float, det.threshold_)  # just set by infer_threshold

    def scores(name: str) -> np.ndarray:
        return det.score(std.transform(X[parts[name]])) if parts[name].size else np.empty(0)

    val, mal = scores("validation"), scores("malicious")
    holdout = label_metrics(
        val, mal, threshold, labels.detail[parts["malicious"]] if labels.labelled else None
    )
    holdout["alert_rate"] = holdout.pop("alert_rate_normal")
    holdout["target_alert_rate"] = cfg.target_alert_rate
    thr_scores = scores("threshold")
    sureness = rate_sureness(thr_scores, val, threshold, cfg, log=log)
    holdout["alert_rate_interval"] = sureness.pop("validation_interval")
    held = np.concatenate([parts["threshold"], parts["validation"]])
    unseen = unseen_shares(X[held], schema)
    if unseen:
        log(
            "train: held-out normal rows with a value the fit rows did not have: "
            + ", ".join(f"{name} {100 * share:.1f} %" for name, share in unseen.items())
        )
    metrics: dict[str, Any] = {
        "holdout": holdout,
        # the baseline of the worker's stream_od_unseen_category_records_total
        "unseen_category_share": unseen,
        # and of its stream_od_missing_field_records_total
        "missing_field_share": missing_shares(X[held], schema),
        **sureness,
        "fit_seconds": fit_seconds,
        "threshold_alert_rate": float(np.mean(thr_scores > threshold)),
        # the spread of normal scores: severity grades the margin over the threshold in it
        "score_scale": float(np.subtract(*np.percentile(thr_scores, [75, 25]))) or None,
        "refused_rows": dict(collections.Counter(refused.values())),
    }
    n_epochs = getattr(det, "n_epochs_", None)  # detectors trained in epochs only
    if n_epochs:
        metrics["epochs_run"] = n_epochs
        metrics["seconds_per_epoch"] = fit_seconds / n_epochs
    training = {
        "protocol": "site",
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "data": [str(p) for p in cfg.data],
        "label_field": labels.field,
        "absent_fields": list(m.absent),
        "rows": {k: int(v.size) for k, v in parts.items()},
        "detector_params": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in det.get_params().items()
        },
    }
    return Artifact(
        detector=det, standardizer=std, schema=schema, metrics=metrics, training=training
    )
