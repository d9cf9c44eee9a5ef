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
    codes = LabelCodes(schema, label_field=label_field, detail_field=detail_field)
    codes.add(records)
    return codes.labels(normal_labels=normal_labels, unlabelled_labels=unlabelled_labels)


class LabelCodes:
    """The label fields' values of records read a chunk at a time, kept as one small integer
    per row and field: what :func:`find_labels` needs of a labelled capture too large to keep
    its records (IoT-23's larger captures are tens of millions of connections), ``evaluate``'s
    case.  :func:`find_labels` is this, fed every record at once."""

    def __init__(
        self,
        schema: FeatureSchema,
        *,
        label_field: str | None = None,
        detail_field: str | None = None,
    ):
        self.label_candidates = [label_field] if label_field else list(schema.label_fields)
        self.schema_fields = list(schema.label_fields)
        self.label_field, self.detail_field = label_field, detail_field
        fields = [*self.label_candidates, *self.schema_fields, detail_field]
        self._vocab: dict[str, dict[str, int]] = {f: {} for f in fields if f}
        self._codes: dict[str, list[np.ndarray]] = {f: [] for f in self._vocab}
        self._present: set[str] = set()
        self.n = 0

    def add(self, records: Sequence[dict]) -> None:
        """The next ``len(records)`` rows."""
        for field, vocab in self._vocab.items():
            code = vocab.setdefault
            codes = np.fromiter(
                (code(str(r[field]), len(vocab)) if field in r else -1 for r in records),
                dtype=np.int32,
                count=len(records),
            )
            if field not in self._present and (codes >= 0).any():
                self._present.add(field)
            self._codes[field].append(codes)
        self.n += len(records)

    def has(self, field: str) -> bool:
        """Whether any row so far has ``field``."""
        return field in self._present

    @property
    def field(self) -> str | None:
        """The label field: ``label_field``, else the first of the schema's that a row has."""
        return next((c for c in self.label_candidates if self.has(c)), None)

    def labels(
        self,
        *,
        normal_labels: Sequence[str] = NORMAL_LABELS,
        unlabelled_labels: Sequence[str] = UNLABELLED_LABELS,
    ) -> Labels:
        """The rows so far, classified (see :func:`find_labels`)."""
        n, field = self.n, self.field
        if self.label_field and field is None:
            raise ValueError(f"no record has the label field {self.label_field!r}")
        if field is None:
            empty = np.full(n, "", dtype=object)
            return Labels(kind=np.zeros(n, dtype=np.int64), label=empty, detail=empty, field=None)
        details = (
            [self.detail_field]
            if self.detail_field
            else [f for f in self.schema_fields if f != field]
        )
        dfield = next((c for c in details if self.has(c)), None)
        label = self._texts(field)
        detail = self._texts(dfield) if dfield else np.full(n, "", dtype=object)
        vocab = list(self._vocab[field])
        kinds = np.array(
            [label_kind(t, normal=normal_labels, unlabelled=unlabelled_labels) for t in vocab]
            + [label_kind("", normal=normal_labels, unlabelled=unlabelled_labels)],
            dtype=np.int64,
        )
        return Labels(kind=kinds[self._all_codes(field)], label=label, detail=detail, field=field)

    def _all_codes(self, field: str) -> np.ndarray:
        return np.concatenate(self._codes[field]) if self._codes[field] else np.empty(0, np.int32)

    def _texts(self, field: str) -> np.ndarray:
        """Each row's text of ``field``; ``""`` where the row lacks it (code -1 indexes the
        ``""`` put last)."""
        texts = np.array([*self._vocab[field], ""], dtype=object)
        return texts[self._all_codes(field)]
