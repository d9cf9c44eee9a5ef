"""Records -> feature matrix: decode and validate one micro-batch of raw Kafka values.

Two wire formats: a JSON object per message whose fields include the model's features (extra
fields are carried, not required), and a raw KDD Cup '99 CSV line (41 fields, optionally the
label as a 42nd).  The fast path handles a clean batch with C-level loops only (``orjson``,
``operator.itemgetter``, one ``numpy`` conversion); a batch with a bad record falls back to a
per-record pass that isolates the bad ones, so one bad record never poisons its batch.

Each rejected record gets a machine-readable reason (the dead-letter topic's header and the
``stream_od_dead_letters_total{reason}`` label) and a human-readable detail.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal, Sequence

import numpy as np
import orjson

from stream_od.schema import KDD_COLUMNS

# Dead-letter reasons: small and stable, they are metric labels.
TOO_LARGE = "too_large"
EMPTY = "empty"
INVALID_JSON = "invalid_json"
INVALID_CSV = "invalid_csv"
MISSING_FEATURE = "missing_feature"
NON_NUMERIC = "non_numeric"
NON_FINITE = "non_finite"
REASONS = (TOO_LARGE, EMPTY, INVALID_JSON, INVALID_CSV, MISSING_FEATURE, NON_NUMERIC, NON_FINITE)

Format = Literal["auto", "json", "csv"]
_NUMBER_TYPES = frozenset({int, float})
_CSV_FIELDS = (len(KDD_COLUMNS), len(KDD_COLUMNS) + 1)  # with or without the label


@dataclass
class Rejected:
    index: int  # position in the batch
    reason: str
    detail: str


@dataclass
class DecodedBatch:
    """A batch split into scoreable rows and rejects.

    ``X[i]`` holds the features of batch record ``rows[i]``; ``fields(i)`` gives that record's
    original fields (for alerts), decoded lazily for CSV.
    """

    X: np.ndarray
    rows: np.ndarray
    rejected: list[Rejected]
    _objects: dict[int, Any] = field(default_factory=dict)
    _values: Sequence[bytes | None] = ()

    def fields(self, i: int) -> dict[str, Any]:
        """Original fields of scoreable row ``i`` (not the batch index)."""
        index = int(self.rows[i])
        obj = self._objects.get(index)
        if obj is None:
            obj = csv_fields(self._values[index])
        return obj


def csv_fields(value: bytes) -> dict[str, Any]:
    """A KDD CSV line as a dict: named columns, plus ``label`` when present."""
    parts = value.decode("utf-8", "replace").strip().split(",")
    out: dict[str, Any] = dict(zip(KDD_COLUMNS, parts))
    if len(parts) > len(KDD_COLUMNS):
        out["label"] = parts[len(KDD_COLUMNS)]
    return out


class RecordDecoder:
    """Turns raw values into the ``(n, n_features)`` float64 matrix the artifact scores."""

    def __init__(self, feature_names: Sequence[str], *, input_format: Format = "auto",
                 max_record_bytes: int = 64 * 1024):
        self.feature_names = tuple(feature_names)
        self.input_format = input_format
        self.max_record_bytes = max_record_bytes
        self._getter = itemgetter(*self.feature_names)
        self._single = len(self.feature_names) == 1
        missing = [n for n in self.feature_names if n not in KDD_COLUMNS]
        self.csv_supported = not missing
        if input_format == "csv" and missing:
            raise ValueError(f"input_format 'csv' is the KDD layout, which has no column(s) "
                             f"{missing} of this model's schema; use JSON input")
        self._csv_columns = [KDD_COLUMNS.index(n) for n in self.feature_names] if not missing else []

    def decode(self, values: Sequence[bytes | None]) -> DecodedBatch:
        n = len(values)
        rejected: list[Rejected] = []
        json_idx: list[int] = []
        csv_idx: list[int] = []
        for i, v in enumerate(values):
            if not v:
                rejected.append(Rejected(i, EMPTY, "empty value (tombstone or zero bytes)"))
            elif len(v) > self.max_record_bytes:
                rejected.append(Rejected(i, TOO_LARGE, f"{len(v)} bytes > max_record_bytes "
                                                       f"{self.max_record_bytes}"))
            elif self.input_format == "json" or (self.input_format == "auto"
                                                 and v.lstrip()[:1] in (b"{", b"[")):
                json_idx.append(i)
            else:
                csv_idx.append(i)
        objects: dict[int, Any] = {}
        blocks: list[tuple[list[int], np.ndarray]] = []
        if json_idx:
            good, X, objs = self._decode_json([values[i] for i in json_idx], json_idx, rejected)
            blocks.append((good, X))
            objects = dict(zip(good, objs))
        if csv_idx:
            if not self.csv_supported:
                for i in csv_idx:
                    rejected.append(Rejected(i, INVALID_JSON, "not a JSON object, and CSV input "
                                                              "does not fit this model's schema"))
            else:
                good, X = self._decode_csv([values[i] for i in csv_idx], csv_idx, rejected)
                blocks.append((good, X))
        if len(blocks) == 1:
            rows = np.asarray(blocks[0][0], dtype=np.int64)
            X = blocks[0][1]
        elif blocks:
            rows = np.concatenate([np.asarray(b[0], dtype=np.int64) for b in blocks])
            X = np.concatenate([b[1] for b in blocks])
            order = np.argsort(rows, kind="stable")
            rows, X = rows[order], X[order]
        else:
            rows = np.empty(0, dtype=np.int64)
            X = np.empty((0, len(self.feature_names)))
        X, rows = self._drop_non_finite(X, rows, rejected)
        rejected.sort(key=lambda r: r.index)
        assert len(rows) + len(rejected) == n
        return DecodedBatch(X=X, rows=rows, rejected=rejected, _objects=objects, _values=values)

    # -- JSON ---------------------------------------------------------------------------
    def _decode_json(self, raw: list[bytes], idx: list[int], rejected: list[Rejected]):
        try:
            objs = list(map(orjson.loads, raw))
            rows = list(map(self._getter, objs))
            if self._single:
                rows = [(r,) for r in rows]
            if set(map(type, itertools.chain.from_iterable(rows))) <= _NUMBER_TYPES:
                return idx, self._to_matrix(rows), objs
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass
        return self._decode_json_slow(raw, idx, rejected)

    def _decode_json_slow(self, raw, idx, rejected):
        good, rows, objs = [], [], []
        for i, v in zip(idx, raw):
            try:
                obj = orjson.loads(v)
            except orjson.JSONDecodeError as exc:
                rejected.append(self._classify_bad_json(i, v, exc))
                continue
            if not isinstance(obj, dict):
                rejected.append(Rejected(i, INVALID_JSON, f"a JSON {type(obj).__name__}, "
                                                          "not an object"))
                continue
            missing = [n for n in self.feature_names if n not in obj]
            if missing:
                rejected.append(Rejected(i, MISSING_FEATURE, "missing feature(s): "
                                                             + ", ".join(missing[:5])))
                continue
            row = [obj[n] for n in self.feature_names]
            bad = [n for n, x in zip(self.feature_names, row) if type(x) not in _NUMBER_TYPES]
            if bad:
                rejected.append(Rejected(i, NON_NUMERIC, f"non-numeric value for {bad[0]}: "
                                                         f"{obj[bad[0]]!r}"[:200]))
                continue
            good.append(i)
            rows.append(row)
            objs.append(obj)
        return good, self._to_matrix(rows), objs

    @staticmethod
    def _classify_bad_json(i: int, value: bytes, exc: Exception) -> Rejected:
        # Strict JSON has no NaN/Infinity, but Python's json.dumps writes them: name that case.
        # Python's parser also takes integers beyond 64 bits, which orjson refuses.
        constants: list[str] = []

        def note(name: str) -> float:
            constants.append(name)
            return float(name)

        try:
            obj = json.loads(value, parse_constant=note)
        except (ValueError, RecursionError):
            return Rejected(i, INVALID_JSON, f"not valid JSON: {exc}"[:200])
        if constants:
            return Rejected(i, NON_FINITE, f"{constants[0]} literal in the JSON")
        if isinstance(obj, dict) and any(isinstance(x, float) and not np.isfinite(x)
                                         for x in obj.values()):
            return Rejected(i, NON_FINITE, "a number overflows to infinity")
        return Rejected(i, NON_NUMERIC, f"number out of range: {exc}"[:200])

    # -- CSV ----------------------------------------------------------------------------
    def _decode_csv(self, raw: list[bytes], idx: list[int], rejected: list[Rejected]):
        cols = self._csv_columns
        try:
            parts = [v.strip().split(b",") for v in raw]
            if all(len(p) in _CSV_FIELDS for p in parts):
                picked = np.array([[p[c] for c in cols] for p in parts], dtype=np.bytes_)
                return idx, picked.astype(np.float64).reshape(len(raw), len(cols))
        except (ValueError, UnicodeError):
            pass
        good, rows = [], []
        for i, v in zip(idx, raw):
            p = v.strip().split(b",")
            if len(p) not in _CSV_FIELDS:
                rejected.append(Rejected(i, INVALID_CSV, f"{len(p)} comma-separated fields, "
                                                         f"expected {_CSV_FIELDS[0]} or "
                                                         f"{_CSV_FIELDS[1]}"))
                continue
            try:
                rows.append([float(p[c]) for c in cols])
            except ValueError:
                bad = next(n for n, c in zip(self.feature_names, cols) if not _is_float(p[c]))
                rejected.append(Rejected(i, NON_NUMERIC, f"non-numeric value for {bad}: "
                                                         f"{p[KDD_COLUMNS.index(bad)]!r}"[:200]))
                continue
            good.append(i)
        return good, self._to_matrix(rows)

    # -- shared -------------------------------------------------------------------------
    def _to_matrix(self, rows: list) -> np.ndarray:
        if not rows:
            return np.empty((0, len(self.feature_names)))
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(self.feature_names))

    def _drop_non_finite(self, X: np.ndarray, rows: np.ndarray, rejected: list[Rejected]):
        finite = np.isfinite(X)
        ok = finite.all(axis=1)
        if ok.all():
            return X, rows
        for r in np.flatnonzero(~ok):
            name = self.feature_names[int(np.flatnonzero(~finite[r])[0])]
            rejected.append(Rejected(int(rows[r]), NON_FINITE, f"non-finite value for {name}: "
                                                               f"{X[r, self.feature_names.index(name)]}"))
        return X[ok], rows[ok]


def _is_float(b: bytes) -> bool:
    try:
        float(b)
        return True
    except ValueError:
        return False
