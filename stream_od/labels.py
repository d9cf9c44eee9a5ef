"""Ground-truth labels as public captures write them, read one way everywhere.

Labelled captures (KDD Cup '99's ``normal.``, Stratosphere's and IoT-23's ``Benign`` /
``Malicious`` / ``Background``) name normal traffic, attacks, and rows nobody labelled.  The
trainer fits and evaluates by these rules, and the demo grades alerts by them: case-insensitive,
a trailing dot ignored.  Labels are never features (a schema refuses a label field as one).
"""

from __future__ import annotations

from collections.abc import Iterable

NORMAL_LABELS: tuple[str, ...] = ("normal", "benign")
UNLABELLED_LABELS: tuple[str, ...] = ("background", "unknown", "-", "")

NORMAL, MALICIOUS, UNLABELLED = 0, 1, -1


def label_key(label: str) -> str:
    return label.strip().rstrip(".").lower()


def label_kind(
    label: str,
    *,
    normal: Iterable[str] = NORMAL_LABELS,
    unlabelled: Iterable[str] = UNLABELLED_LABELS,
) -> int:
    """:data:`NORMAL`, :data:`MALICIOUS` or :data:`UNLABELLED`."""
    key = label_key(label)
    if key in {label_key(x) for x in normal}:
        return NORMAL
    return UNLABELLED if key in {label_key(x) for x in unlabelled} else MALICIOUS
