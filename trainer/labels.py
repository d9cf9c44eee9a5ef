"""Ground truth in sensor logs: which rows are normal, malicious, or unlabelled.

Public labelled captures (Stratosphere's ``conn.log.labeled``, IoT-23) carry a ``label`` column
(``Benign``, ``Malicious``, ``Background``, ...) and a detailed one.  A site's own traffic has
none, and then every row counts as normal: the operator vouches for the training window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream_od.labels import (
    MALICIOUS,
    NORMAL,
    NORMAL_LABELS,
    UNLABELLED,
    UNLABELLED_LABELS,
    label_kind,
)
from stream_od.schema import FeatureSchema

# The label kinds are stream_od's (the demo grades alerts with them); trainer code takes them
# from here with the rest.
__all__ = [
    "MALICIOUS",
    "NORMAL",
    "NORMAL_LABELS",
    "UNLABELLED",
    "UNLABELLED_LABELS",
    "Labels",
    "find_labels",
    "label_kind",
]


@dataclass(frozen=True)
class Labels:
    """Per row: ``kind`` (0 normal, 1 malicious, -1 unlabelled), the label text and the
    detailed label text (``""`` where there is none)."""

    kind: np.ndarray
    label: np.ndarray
    detail: np.ndarray
    field: str | None  # the label field found, None for unlabelled data

    @property
    def labelled(self) -> bool:
        return self.field is not None


def find_labels(
    records: Sequence[dict],
    schema: FeatureSchema,
    *,
    label_field: str | None = None,
    detail_field: str | None = None,
    normal_labels: Sequence[str] = NORMAL_LABELS,
    unlabelled_labels: Sequence[str] = UNLABELLED_LABELS,
) -> Labels:
    """Classify rows by their label field (``label_field``, else the first of the schema's
    ``label_fields`` that any record has).  Matching is case-insensitive, and a trailing dot
    (KDD's ``normal.``) is ignored.  Without a label field every row is normal."""
    n = len(records)
    candidates = [label_field] if label_field else list(schema.label_fields)
    field = next((c for c in candidates if any(c in r for r in records)), None)
    if label_field and field is None:
        raise ValueError(f"no record has the label field {label_field!r}")
    if field is None:
        empty = np.full(n, "", dtype=object)
        return Labels(kind=np.zeros(n, dtype=np.int64), label=empty, detail=empty, field=None)
    details = [detail_field] if detail_field else [f for f in schema.label_fields if f != field]
    dfield = next((c for c in details if any(c in r for r in records)), None)
    label = np.array([str(r.get(field, "")) for r in records], dtype=object)
    detail = np.array([str(r.get(dfield, "")) if dfield else "" for r in records], dtype=object)
    kinds = {
        text: label_kind(text, normal=normal_labels, unlabelled=unlabelled_labels)
        for text in set(label.tolist())
    }
    kind = np.fromiter((kinds[text] for text in label), dtype=np.int64, count=n)
    return Labels(kind=kind, label=label, detail=detail, field=field)
