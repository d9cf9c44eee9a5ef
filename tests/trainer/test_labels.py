"""trainer.labels: rows classified by their label field, whether the records come at once
(``find_labels``) or a chunk at a time (``LabelCodes``, for ``evaluate`` on large captures)."""

from __future__ import annotations

import numpy as np
import pytest

from stream_od.schema import load_schema
from trainer.labels import MALICIOUS, NORMAL, UNLABELLED, LabelCodes, find_labels

SCHEMA = load_schema("zeek-conn")


def rows() -> list[dict]:
    """The label field appears only after the first rows, the detailed one on some rows, and
    one row carries a value that is not text."""
    out: list[dict] = [{"ts": i} for i in range(5)]
    out += [{"label": "Benign", "detailedlabel": "-"} for _ in range(4)]
    out += [{"label": "Malicious", "detailedlabel": "C&C"}, {"label": "Background"}]
    out += [{"label": 0}, {"label": "normal."}, {"label": "Malicious", "detailedlabel": "scan"}]
    return out


def same(a, b) -> None:
    assert a.field == b.field
    for name in ("kind", "label", "detail"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_chunks_classify_the_rows_as_all_at_once(size):
    records = rows()
    codes = LabelCodes(SCHEMA)
    for start in range(0, len(records), size):
        codes.add(records[start : start + size])
    got = codes.labels()
    same(got, find_labels(records, SCHEMA))
    assert got.field == "label"
    tail = [MALICIOUS, UNLABELLED, MALICIOUS, NORMAL, MALICIOUS]  # 0 is no normal label
    assert got.kind.tolist() == [UNLABELLED] * 5 + [NORMAL] * 4 + tail
    assert got.label[:5].tolist() == [""] * 5 and got.label[11] == "0"
    assert got.detail.tolist() == [""] * 5 + ["-"] * 4 + ["C&C", "", "", "", "scan"]


def test_without_a_label_field_every_row_is_normal_and_a_named_one_must_be_there():
    codes = LabelCodes(SCHEMA)
    codes.add([{"ts": 1}, {"ts": 2}])
    assert codes.field is None and codes.labels().kind.tolist() == [NORMAL, NORMAL]
    named = LabelCodes(SCHEMA, label_field="verdict")
    named.add(rows())
    with pytest.raises(ValueError, match="no record has the label field 'verdict'"):
        named.labels()
    verdict = LabelCodes(SCHEMA, label_field="verdict", detail_field="why")
    verdict.add([{"verdict": "benign", "why": "x", "label": "Malicious"}])
    labels = verdict.labels()
    assert labels.field == "verdict" and labels.kind.tolist() == [NORMAL]
    assert labels.detail.tolist() == ["x"]
