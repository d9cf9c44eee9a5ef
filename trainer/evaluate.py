"""Metrics of a detector's scores against labels."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score


def classification_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """F1 / precision / recall / confusion at ``scores > threshold``, and ROC AUC."""
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    pred = (scores > threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y)) == 2
    return {
        "n": int(y.size),
        "n_attack": int(y.sum()),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "auroc": float(roc_auc_score(y, scores)) if both else None,
        "threshold": float(threshold),
        "flag_rate": float(pred.mean()),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def per_attack_recall(attack: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    out = {}
    for name in sorted(set(attack.tolist())):
        mask = attack == name
        out[name] = float(np.mean(scores[mask] > threshold))
    return out
