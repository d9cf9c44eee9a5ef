"""The quality gate of ``stream-od train``: a model below a floor is never published.

The figures are those measured on the held-back test batch (``--min-auroc`` / ``--min-f1``)
and, for a model trained on sensor logs, the held-out alert rate (``--max-alert-rate``, by
default twice the target).  Below a floor the command prints what failed and exits with
:data:`EXIT_GATE`.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_GATE = 3


def gate_failures(test_batch: dict, *, min_auroc: float | None, min_f1: float | None) -> list[str]:
    """What falls below a floor, e.g. ``["auroc 0.91 < 0.95"]``; empty when the model passes."""
    failures = []
    for name, floor in (("auroc", min_auroc), ("f1", min_f1)):
        if floor is None:
            continue
        value = float(test_batch.get(name, float("nan")))
        if not value >= floor:  # NaN fails too
            failures.append(f"{name} {value:.4f} < {floor}")
    return failures


def failures(args: argparse.Namespace, art) -> list[str]:
    """Every floor ``art`` falls below, as ``"name value < floor"``; empty when it passes."""
    if "holdout" not in art.metrics:
        figures = art.metrics["test_batch"]
        return gate_failures(figures, min_auroc=args.min_auroc, min_f1=args.min_f1)
    figures = art.metrics["holdout"]  # trained on sensor logs (trainer.site)
    limit = getattr(args, "max_alert_rate", None)
    if limit is None:
        limit = 2 * figures["target_alert_rate"]
    out = gate_failures(figures, min_auroc=args.min_auroc, min_f1=args.min_f1)
    if (args.min_auroc is not None or args.min_f1 is not None) and "auroc" not in figures:
        out.append("no labelled malicious rows to measure --min-auroc/--min-f1 on")
    if not figures["alert_rate"] <= limit:
        out.append(
            f"held-out alert rate {figures['alert_rate']:.4f} > {limit:.4f} "
            f"(target {figures['target_alert_rate']})"
        )
    return out


def report(art, below: list[str]) -> None:
    """The failed gate on stderr: one JSON line with the figures, then a sentence."""
    part = "holdout" if "holdout" in art.metrics else "test_batch"
    figures = art.metrics[part]
    print(
        json.dumps(
            {
                "quality_gate": "failed",
                "version": art.version,
                "below": below,
                part: {
                    k: figures.get(k)
                    for k in ("f1", "precision", "recall", "auroc", "alert_rate")
                    if k in figures
                },
            }
        ),
        file=sys.stderr,
    )
    print(f"error: quality gate failed ({'; '.join(below)}): nothing published", file=sys.stderr)
