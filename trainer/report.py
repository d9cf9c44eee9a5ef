"""Evaluation report of an artifact on labelled data: report.json + PNG plots.

Two kinds of data: a KDD-style file (the reference protocol's test batch and the whole file),
and sensor logs (Zeek conn logs, Suricata EVE) with a label column, where the report gives
what a SOC sizes a deployment by: the share of benign rows alerted on, the share of malicious
rows caught (overall and per detailed label), ROC and PR AUC.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from stream_od.artifact import Artifact
from stream_od.records import field_value
from trainer.data import Batch, create_outlier_batch, frame_matrix, load_records
from trainer.evaluate import classification_metrics, per_attack_recall

#: the plots a report may have; a rerun into the same directory removes the earlier run's
PLOTS = ("scores.png", "roc.png", "confusion.png", "latent.png")


def _plots(
    out: pathlib.Path, art: Artifact, batch: Batch, scores: np.ndarray, note: str | None = None
) -> list[str]:
    """The PNGs of a report; ``note`` (what the rows are, when not all of them) goes under
    the instance plot's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    written = []
    y, thr = batch.y, art.threshold
    # instance scores against the threshold (log scale: energies span decades)
    fig, ax = plt.subplots(figsize=(9, 4))
    shift = 1.0 - min(float(scores.min()), thr)
    idx = np.arange(len(scores))
    for lab, colour, name in ((0, "tab:blue", "normal"), (1, "tab:red", "attack")):
        ax.scatter(idx[y == lab], scores[y == lab] + shift, s=6, c=colour, label=name)
    ax.axhline(thr + shift, color="k", ls="--", label=f"threshold {thr:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("instance")
    ax.set_ylabel(f"score + {shift:.3g}")
    ax.legend()
    ax.set_title(f"{art.version}: instance scores" + (f"\n({note})" if note else ""))
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=100)
    plt.close(fig)
    written.append("scores.png")

    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, scores)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(fpr, tpr)
        ax.plot([0, 1], [0, 1], "k:")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC")
        fig.tight_layout()
        fig.savefig(out / "roc.png", dpi=100)
        plt.close(fig)
        written.append("roc.png")

    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, (scores > thr).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks([0, 1], ["normal", "attack"])
    ax.set_yticks([0, 1], ["normal", "attack"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=100)
    plt.close(fig)
    written.append("confusion.png")

    latent = getattr(art.detector, "latent", None)
    if latent is not None:
        zc = latent(art.standardizer.transform(batch.X))
        names = tuple(art.detector.recon_features)
        first = zc.shape[1] - len(names)  # zc = latent code, then the reconstruction features
        labels = {
            "relative_distance": "relative Euclidean distance",
            "cosine": "cosine similarity",
            "log_distance": "log Euclidean distance",
        }
        pairs = [(0, first + k, labels[n]) for k, n in enumerate(names)]
        fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4))
        for ax, (i, j, name) in zip(axes, pairs):
            for lab, colour, lname in ((0, "tab:blue", "normal"), (1, "tab:red", "attack")):
                ax.scatter(zc[y == lab, i], zc[y == lab, j], s=6, c=colour, label=lname)
            ax.set_xlabel("latent z[0]")
            ax.set_ylabel(name)
            ax.legend()
        fig.suptitle("latent encoding vs reconstruction features")
        fig.tight_layout()
        fig.savefig(out / "latent.png", dpi=100)
        plt.close(fig)
        written.append("latent.png")
    return written


def evaluate_artifact(
    artifact_dir: str | os.PathLike,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    test_seed: int = 1,
    plots: bool = True,
) -> dict[str, Any]:
    """Metrics on the protocol test batch drawn from ``data_path`` (seed 1, 1,000 rows,
    10 % attacks) and on every record of the file; writes report.json and PNGs."""
    art = Artifact.load(artifact_dir)
    df = load_records(data_path)
    data = Batch(
        X=frame_matrix(df, art.schema, str(data_path)),
        y=df["target"].to_numpy(np.int64),
        attack=df["attack"].to_numpy(object),
        feature_names=art.feature_names,
    )
    full_scores = art.score(data.X)
    report: dict[str, Any] = {
        "artifact": str(artifact_dir),
        "version": art.version,
        "detector_kind": art.detector_kind,
        "data": str(data_path),
        "threshold": art.threshold,
        "full": classification_metrics(data.y, full_scores, art.threshold),
        "per_attack_recall": per_attack_recall(data.attack, full_scores, art.threshold),
    }
    batch = None
    if data.y.any() and (data.y == 0).any():
        batch = create_outlier_batch(data, 1000, 10, seed=test_seed)
        report["test_batch"] = classification_metrics(batch.y, art.score(batch.X), art.threshold)
        report["test_batch"]["seed"] = test_seed
    out = _out_dir(artifact_dir, out_dir)
    if plots:
        pb = batch if batch is not None else data
        report["plots"] = _plots(out, art, pb, art.score(pb.X))
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    report["out_dir"] = str(out)
    return report


def evaluate_logs(
    artifact_dir: str | os.PathLike,
    paths: list[str],
    out_dir: str | os.PathLike | None = None,
    *,
    plots: bool = True,
    label_field: str | None = None,
    progress: Callable[[int], None] = lambda read: None,
) -> dict[str, Any]:
    """Report on labelled sensor logs: ``roc_auc``, ``pr_auc``, ``alert_rate_normal``,
    ``recall`` and recall per detailed label at the artifact's threshold.  Rows labelled
    neither normal nor malicious (Background, Unknown) are counted and left out.  The logs are
    read a chunk at a time (:mod:`trainer.scored_logs`), so their size is not bounded by
    memory; ``progress`` is told the records read so far."""
    from trainer.alert_rate import rate_interval
    from trainer.labels import MALICIOUS, NORMAL, LabelCodes
    from trainer.scored_logs import score_logs
    from trainer.site import label_metrics

    art = Artifact.load(artifact_dir)

    def check(head: list[dict], codes: LabelCodes) -> None:
        """Before anything is scored: the schema's fields, and a label field to grade by."""
        check_columns(art.schema, head, paths)
        if not head:
            raise ValueError(f"{', '.join(map(str, paths))}: no records to evaluate")
        if codes.field is None:
            where = f"{', '.join(map(str, paths))}: none of the first {len(head):,} records has"
            if label_field:
                raise ValueError(f"{where} the label field {label_field!r}")
            fields = ", ".join(art.schema.label_fields)
            raise ValueError(
                f"{where} a label field ({fields}): evaluate needs labelled rows; use "
                "`stream-od score` on unlabelled data"
            )

    scored = score_logs(art, paths, label_field=label_field, check=check, progress=progress)
    labels, scores, ok = scored.labels, scored.scores, ~scored.refused
    normal = ok & (labels.kind == NORMAL)
    malicious = ok & (labels.kind == MALICIOUS)
    report: dict[str, Any] = {
        "artifact": str(artifact_dir),
        "version": art.version,
        "detector_kind": art.detector_kind,
        "schema": art.schema.name,
        "data": list(paths),
        "label_field": labels.field,
        "n_records": len(scores),
        "skipped_not_selected": scored.skipped,
        "n_unlabelled": int(np.sum(labels.kind == -1)),
        "refused_by_schema": int(scored.refused.sum()),
        **label_metrics(scores[normal], scores[malicious], art.threshold, labels.detail[malicious]),
    }
    if normal.any():
        # sampling error only: a rate outside the trained interval is drift, not chance
        k = int(np.sum(scores[normal] > art.threshold))
        report["alert_rate_normal_interval"] = list(rate_interval(k, int(normal.sum())))
        # values the training traffic did not have, per categorical field: what drifted
        report["unseen_category_share_normal"] = scored.shares("unseen", normal)
        report["unseen_category_share_training"] = art.metrics.get("unseen_category_share")
        # and fields the records lacked, against training: what a sensor stopped sending
        report["missing_field_share_normal"] = scored.shares("missing", normal)
        report["missing_field_share_training"] = art.metrics.get("missing_field_share")
    out = _out_dir(artifact_dir, out_dir)
    if plots:
        at = scored.plot_positions
        keep = (normal | malicious)[at]
        batch = Batch(
            X=scored.plot_rows[keep],
            y=malicious[at][keep].astype(np.int64),
            attack=labels.detail[at][keep],
            feature_names=art.feature_names,
        )
        of = int(ok.sum())
        if len(at) < of:
            report["plotted"] = f"a uniform sample of {len(at):,} of the {of:,} scored records"
        report["plots"] = _plots(out, art, batch, scores[at][keep], note=report.get("plotted"))
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    report["out_dir"] = str(out)
    return report


def check_columns(schema, records, paths) -> None:
    """A log whose records never carry a field that the schema requires (``missing =
    "reject"``) cannot be scored: say which field, before scoring anything.  Nor can one whose
    records carry none of its fields at all: every record would be refused
    (``no_schema_fields``), most often because what shipped them wrapped them (a mistyped
    path explains one field missing, not all of several; with one, its name says more)."""
    sample = records[:1000]
    if (
        len(schema.fields) > 1
        and sample
        and not any(_has(r, f.path) for r in sample for f in schema.fields)
    ):
        keys = ", ".join(map(str, list(sample[0])[:6]))
        raise ValueError(
            f"{', '.join(map(str, paths))}: none of the first {len(sample):,} records carries "
            f"any of the {len(schema.fields)} fields of schema {schema.name!r} (the first "
            f"record has: {keys}): records of another kind, or wrapped by what shipped them "
            "(Filebeat's JSON has the sensor's line as text in \"message\"); use the "
            "sensor's own records"
        )
    for f in schema.fields:
        if f.missing == "reject" and not any(_has(r, f.path) for r in records[:1000]):
            raise ValueError(
                f"{', '.join(map(str, paths))}: no record has {f.path!r}, which "
                f"schema {schema.name!r} requires (field {f.name!r})"
            )


def _has(record: dict, path: str) -> bool:
    """Whether ``record`` has a value at ``path`` where the encoder looks for it
    (:func:`stream_od.records.field_value`): a null (Zeek's unset ``-``) is no value, as the
    encoder reads it as missing."""
    return field_value(record, path) is not None


def _out_dir(artifact_dir, out_dir) -> pathlib.Path:
    if out_dir is not None:
        out = pathlib.Path(out_dir)
    else:  # beside the artifact, by its real name ("." has none)
        artifact = pathlib.Path(artifact_dir).resolve()
        out = artifact.with_name(artifact.name + "-report")
    out.mkdir(parents=True, exist_ok=True)
    for name in PLOTS:  # an earlier run's plots would pass for this run's
        (out / name).unlink(missing_ok=True)
    return out
