"""Raw Kafka values -> field values by the schema -> feature matrix, for one micro-batch.

Two wire formats: a JSON object per message (a Zeek conn record as Zeek's JSON writer sends
it, a Suricata EVE event, a KDD record with named fields; fields are found by the schema's
paths, extra fields are carried, not required), and a raw KDD Cup '99 CSV line (41 fields,
optionally the label as a 42nd) for schemas whose fields are all KDD columns.  A clean batch
is decoded with C-level loops (``orjson``, one list comprehension per field, one ``numpy``
conversion per column); records that are not JSON objects are isolated one by one, and the
encoder (:class:`stream_od.features.FeatureEncoder`) rejects a record whose value it cannot
use, so one bad record never poisons its batch.

Each rejected record gets a machine-readable reason (the dead-letter topic's header and the
``stream_od_dead_letters_total{reason}`` label) and a human-readable detail.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from stream_od.features import (
    INVALID_TYPE,
    MISSING_FEATURE,
    NO_SCHEMA_FIELDS,
    NON_FINITE,
    NON_NUMERIC,
    Column,
    Encoded,
    FeatureEncoder,
    epoch_seconds,
)
from stream_od.schema import KDD_COLUMNS, FeatureSchema
from stream_od.schema.select import untagged
from stream_od.schema.windows import FEATURES
from stream_od.windows import TrafficWindows

# Dead-letter reasons: small and stable, they are metric labels.
TOO_LARGE = "too_large"
EMPTY = "empty"
INVALID_JSON = "invalid_json"
INVALID_CSV = "invalid_csv"
# decoded, but the model's score of it overflowed: a value far beyond its training range
NON_FINITE_SCORE = "non_finite_score"
REASONS = (
    TOO_LARGE,
    EMPTY,
    INVALID_JSON,
    INVALID_CSV,
    MISSING_FEATURE,
    NON_NUMERIC,
    NON_FINITE,
    INVALID_TYPE,
    NO_SCHEMA_FIELDS,
    NON_FINITE_SCORE,
)
NON_FINITE_SCORE_DETAIL = (
    "the model's score of this record is not finite: it holds a value far beyond the range of "
    "the model's training traffic (a corrupt or mis-scaled field: check the sensor)"
)

Format = Literal["auto", "json", "csv"]
_CSV_FIELDS = (len(KDD_COLUMNS), len(KDD_COLUMNS) + 1)  # with or without the label


@dataclass
class Rejected:
    index: int  # position in the batch
    reason: str
    detail: str


@dataclass
class DecodedBatch:
    """A batch split into scoreable rows, rejects, and records skipped as not this schema's
    kind (:mod:`stream_od.schema.select`).

    ``X[i]`` holds the features of batch record ``rows[i]``; ``fields(i)`` gives that record's
    original fields (for alerts), decoded lazily for CSV.
    """

    X: np.ndarray
    rows: np.ndarray
    rejected: list[Rejected]
    skipped: list[int] = field(default_factory=list)  # batch positions, ascending
    _objects: dict[int, Any] = field(default_factory=dict)
    _values: Sequence[bytes | None] = ()

    def reject_rows(self, keep: np.ndarray, reason: str, detail: str) -> DecodedBatch:
        """This batch with the scoreable rows where ``keep`` is False moved to ``rejected``
        (a record the model cannot score is dead-lettered like one the decoder refused)."""
        dropped = [Rejected(int(i), reason, detail) for i in self.rows[~keep]]
        return DecodedBatch(
            X=self.X[keep],
            rows=self.rows[keep],
            rejected=sorted(self.rejected + dropped, key=lambda r: r.index),
            skipped=self.skipped,
            _objects=self._objects,
            _values=self._values,
        )

    def fields(self, i: int) -> dict[str, Any]:
        """Original fields of scoreable row ``i`` (not the batch index)."""
        return self.fields_of([i])[0]

    def fields_of(self, rows: Sequence[int] | np.ndarray | slice) -> list[dict[str, Any]]:
        """:meth:`fields` of each of the scoreable ``rows`` (a batch's alerts at once)."""
        objects, values = self._objects, self._values
        out = []
        for index in self.rows[rows].tolist():
            obj = objects.get(index)  # a CSV row always has its value, decoded here
            out.append(obj if obj is not None else csv_fields(values[index] or b""))
        return out


def csv_fields(value: bytes) -> dict[str, Any]:
    """A KDD CSV line as a dict: named columns, plus ``label`` when present.  Numbers become
    JSON numbers (``181`` an integer, ``0.00`` a float), so an alert about a CSV record has the
    same types as one about the same record sent as JSON."""
    parts = value.decode("utf-8", "replace").strip().split(",")
    out: dict[str, Any] = dict(zip(KDD_COLUMNS, map(_csv_value, parts)))
    if len(parts) > len(KDD_COLUMNS):
        out["label"] = parts[len(KDD_COLUMNS)]
    return out


def _csv_value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def field_values(records: Sequence[dict], schema: FeatureSchema) -> list[list[Any]]:
    """The values of each schema field across ``records`` (``None`` where a record lacks it).

    A path is looked up as one key first (Zeek's flat ``id.orig_h``), then, for the records
    without that key, as a dotted path into nested objects (EVE's ``flow.bytes_toserver``),
    then as one key with ``_`` for the dots (``id_orig_h``: Zeek with
    ``redef Log::default_scope_sep = "_"``, documented for exactly this field, as sites that
    ship to Elasticsearch often set it; likewise shippers that flatten nested JSON with ``_``).
    """
    return [path_values(records, f.path) for f in schema.fields]


def path_values(records: Sequence[dict], path: str) -> list[Any]:
    """The values at ``path`` across ``records``, found as :func:`field_values` finds them."""
    n = len(records)
    col = list(map(dict.get, records, itertools.repeat(path, n)))  # no Python frame per row
    if "." in path and None in col:
        parts, flat = path.split("."), scoped(path)
        for i, v in enumerate(col):
            if v is None:
                col[i] = _beyond_key(records[i], parts, flat)
    return col


def scoped(path: str) -> str:
    """``path`` as one key with Zeek's other usual scope separator: ``id.orig_h`` ->
    ``id_orig_h`` (the third place :func:`field_values` looks)."""
    return path.replace(".", "_")


def select_records(
    positions: list[int], records: list[dict], schema: FeatureSchema
) -> tuple[list[int], list[dict], list[int]]:
    """The records ``schema`` is for (a tagged one unwrapped), and the positions of the others
    (skipped, not refused: :mod:`stream_od.schema.select`).  ``positions[i]`` is
    ``records[i]``'s place in its batch or file; the order is kept."""
    spec = schema.select
    if spec is None:
        return positions, records, []
    # a tagged record's first value is an object; a sensor's own record starts with a time
    if spec.tagged and any(type(next(iter(r.values()), None)) is dict for r in records):
        tags = list(map(untagged, records))
        records = [r if t is None else t[1] for r, t in zip(records, tags)]
        kinds = [v if t is None else t[0] for v, t in zip(path_values(records, spec.field), tags)]
    else:
        kinds = path_values(records, spec.field)
    keeps = list(map(spec.keeps, kinds))
    if all(keeps):
        return positions, records, []
    kept = [i for i, k in enumerate(keeps) if k]
    return (
        [positions[i] for i in kept],
        [records[i] for i in kept],
        [p for p, k in zip(positions, keeps) if not k],
    )


def field_value(record: dict, path: str) -> Any:
    """One record's value at ``path``, found as :func:`field_values` finds it (``None`` when
    absent)."""
    if path in record:
        return record[path]
    return _beyond_key(record, path.split("."), scoped(path))


def _beyond_key(record: dict, parts: list[str], flat: str) -> Any:
    """Where a path is looked for when it is not one key of ``record``: the nested path, then
    the key with ``_`` for the dots (``flat``; the path itself when it has no dots)."""
    value = _nested(record, parts)
    return record.get(flat) if value is None else value


def _nested(obj: Any, parts: list[str]) -> Any:
    for p in parts:
        if type(obj) is not dict:
            return None
        obj = obj.get(p)
    return obj


class RecordDecoder:
    """Turns raw values into the ``(n, n_features)`` float64 matrix the artifact scores."""

    def __init__(
        self,
        schema: FeatureSchema | Sequence[str],
        *,
        input_format: Format = "auto",
        max_record_bytes: int = 64 * 1024,
        carried_roles: Sequence[str] = (),
        skipped_roles: Sequence[str] = (),
    ):
        """``carried_roles``: window roles whose values the records carry, computed by an
        upstream stage (``_stream_od.windows.<role>``, see :func:`with_window_values`), so this
        decoder reads them instead of computing them; ``skipped_roles``: roles neither read nor
        computed here (a windows stage leaves them to the stage after it; their columns are
        zero, so such a matrix is not for scoring)."""
        if not isinstance(schema, FeatureSchema):
            schema = FeatureSchema.numeric(schema)
        self.schema = schema
        self.encoder = FeatureEncoder(schema)
        self.feature_names = schema.feature_names
        self.input_format = input_format
        self.max_record_bytes = max_record_bytes
        # Stateful: the windows remember the records decoded before (stream_od.windows), one
        # set per stream (a partition in the worker; None for a file), so that a partition's
        # windows depend on that partition's records alone and move with it.
        self.windowed = schema.windows is not None
        self.window_streams: dict[Hashable, TrafficWindows] = {}
        self.carried_roles = tuple(carried_roles)
        self.skipped_roles = tuple(skipped_roles)
        paths = [f.path for f in schema.fields]
        if schema.windows is not None:
            paths += schema.windows.paths
            unknown = sorted(
                (set(carried_roles) | set(skipped_roles)) - {r.name for r in schema.windows.roles}
            )
            if unknown:
                raise ValueError(f"window roles {unknown} are not roles of schema {schema.name!r}")
        elif carried_roles or skipped_roles:
            raise ValueError(f"schema {schema.name!r} has no windows")
        missing = [p for p in paths if p not in KDD_COLUMNS]
        self.csv_supported = not missing
        if input_format == "csv" and missing:
            raise ValueError(
                f"input_format 'csv' is the KDD layout, which has no column(s) "
                f"{missing} of this model's schema; use JSON input"
            )
        self._csv_columns = [KDD_COLUMNS.index(p) for p in paths] if not missing else []

    def decode(
        self,
        values: Sequence[bytes | None],
        extra_bytes: Sequence[int] | None = None,
        streams: Sequence[Hashable] | None = None,
    ) -> DecodedBatch:
        """``extra_bytes[i]``: the size of record ``i``'s key, which counts towards
        ``max_record_bytes`` too (a small value with a 2 MB key is as large as any)."""
        n = len(values)
        rejected: list[Rejected] = []
        json_idx: list[int] = []
        csv_idx: list[int] = []
        limit = self.max_record_bytes
        oversized: list[tuple[int, int]] = []
        for i, v in enumerate(values):
            size = (len(v) if v else 0) + (extra_bytes[i] if extra_bytes is not None else 0)
            if size > limit:
                oversized.append((i, size))
            elif not v:
                rejected.append(Rejected(i, EMPTY, "empty value (tombstone or zero bytes)"))
            elif self.input_format == "json" or (
                self.input_format == "auto" and v.lstrip()[:1] in (b"{", b"[")
            ):
                json_idx.append(i)
            else:
                csv_idx.append(i)
        objects: dict[int, Any] = {}
        skipped: list[int] = []
        if oversized:
            skipped = self._refuse_oversized(values, oversized, rejected)
        blocks: list[tuple[list[int], np.ndarray, set[int]]] = []
        if json_idx:
            good, objs = self._parse_json(values, json_idx, rejected)
            good, objs, skips = select_records(good, objs, self.schema)
            skipped = sorted(skipped + skips) if skipped else skips
            enc = self.encode_records(objs, None if streams is None else [streams[i] for i in good])
            blocks.append((good, *self._collect(good, enc, rejected)))
            objects = dict(zip(good, objs))
        if csv_idx:
            if not self.csv_supported:
                for i in csv_idx:
                    rejected.append(
                        Rejected(
                            i,
                            INVALID_JSON,
                            "not a JSON object, and CSV input does not fit this model's schema",
                        )
                    )
            else:
                good, columns = self._parse_csv(values, csv_idx, rejected)
                enc = self.encoder.encode(columns, len(good))
                blocks.append((good, *self._collect(good, enc, rejected)))
        rows_list: list[int] = []
        X_parts: list[np.ndarray] = []
        for good, X, dropped in blocks:
            keep = [j for j, i in enumerate(good) if i not in dropped]
            rows_list += [good[j] for j in keep]
            X_parts.append(X if len(keep) == len(good) else X[keep])
        rows = np.asarray(rows_list, dtype=np.int64)
        if len(X_parts) == 1:
            X = X_parts[0]
        elif X_parts:
            X = np.concatenate(X_parts)
        else:
            X = np.empty((0, len(self.feature_names)))
        if len(X_parts) > 1:
            order = np.argsort(rows, kind="stable")
            rows, X = rows[order], X[order]
        rejected.sort(key=lambda r: r.index)
        assert len(rows) + len(rejected) + len(skipped) == n
        return DecodedBatch(
            X=X, rows=rows, rejected=rejected, skipped=skipped, _objects=objects, _values=values
        )

    @property
    def _elsewhere(self) -> tuple[str, ...]:
        return self.carried_roles + self.skipped_roles

    def window_columns(self, role: str) -> slice:
        """The columns of one window role in the matrix."""
        spec = self.schema.windows
        assert spec is not None
        j = [r.name for r in spec.roles].index(role)
        start = len(self.schema.field_columns) + j * len(FEATURES)
        return slice(start, start + len(FEATURES))

    def windows_for(self, stream: Hashable) -> TrafficWindows:
        w = self.window_streams.get(stream)
        if w is None:
            spec = self.schema.windows
            assert spec is not None and self.schema.time_field
            w = self.window_streams[stream] = TrafficWindows(
                spec,
                self.schema.time_field,
                [r.name for r in spec.roles if r.name not in self._elsewhere],
            )
        return w

    def drop_windows(self, streams: Iterable[Hashable]) -> None:
        """Forget the windows of streams (partitions) this decoder no longer reads."""
        for stream in streams:
            self.window_streams.pop(stream, None)

    @property
    def window_keys(self) -> int:
        return sum(w.keys_held for w in self.window_streams.values())

    def take_late(self) -> int:
        return sum(w.take_late() for w in self.window_streams.values())

    def encode_records(
        self, records: Sequence[dict], streams: Sequence[Hashable] | None = None
    ) -> Encoded:
        """Decoded records -> their rows of the matrix: the fields' columns, then the window
        columns of the records the encoder kept, which join their stream's windows (record
        ``i`` is of stream ``streams[i]``; one stream when ``None``) in this order.  The
        trainer, ``evaluate`` and ``score`` call this too, so they compute what the worker does.
        """
        n = len(records)
        enc = self.encoder.encode(field_values(records, self.schema), n)
        if not self.windowed:
            return enc
        spec = self.schema.windows
        assert spec is not None
        rejected = dict(enc.rejected)
        start = enc.X.shape[1]
        X = np.zeros((n, start + len(spec.roles) * len(FEATURES)))
        X[:, :start] = enc.X
        for role in spec.roles:
            if role.name in self.carried_roles:
                _carried(records, role.name, X[:, self.window_columns(role.name)], rejected)
        keep = [i for i in range(n) if i not in rejected]
        by_stream: dict[Hashable, list[int]] = {}
        for i in keep:
            by_stream.setdefault(None if streams is None else streams[i], []).append(i)
        computed = [
            c
            for r in spec.roles
            if r.name not in self._elsewhere
            for c in range(X.shape[1])[self.window_columns(r.name)]
        ]
        for stream, rows in by_stream.items():
            w = self.windows_for(stream)
            kept = [records[i] for i in rows]
            X[np.ix_(rows, computed)] = w.features(
                {p: path_values(kept, p) for p in w.paths}, len(kept)
            )
        return Encoded(X=X, rejected=dict(sorted(rejected.items())))

    def restore_test(self, newest: bytes | None) -> Callable[[bytes | None], bool] | None:
        """For rebuilding a partition's windows from its tail: a test that a record (its raw
        value) lies before anything that can still be in the windows after the record
        ``newest`` (the partition's newest processed one with an event time; ``None`` when
        ``newest`` has none, a dead letter or a skipped record, so the reader asks the one
        before).  With the partition's event times out of order by at most ``lateness_s``, the
        windows rebuilt from the records after the last such one equal the windows of an
        uninterrupted run (docs/windows.md)."""
        spec = self.schema.windows
        assert spec is not None and self.schema.time_field
        time_field = self.schema.time_field
        tagged = self.schema.select is not None and self.schema.select.tagged
        ts = _event_time(newest, time_field, tagged)
        if ts is None:
            return None
        cutoff = ts - max(spec.time_s, spec.horizon_s) - 3 * spec.lateness_s
        return lambda value: (
            (t := _event_time(value, time_field, tagged)) is not None and t < cutoff
        )

    @staticmethod
    def _collect(
        good: list[int], enc: Encoded, rejected: list[Rejected]
    ) -> tuple[np.ndarray, set[int]]:
        """The encoded block, its refusals added to ``rejected``."""
        for j, (reason, detail) in enc.rejected.items():
            rejected.append(Rejected(good[j], reason, detail))
        return enc.X, {good[j] for j in enc.rejected}

    # -- JSON ---------------------------------------------------------------------------
    def _refuse_oversized(
        self,
        values: Sequence[bytes | None],
        oversized: list[tuple[int, int]],
        rejected: list[Rejected],
    ) -> list[int]:
        """Records over ``max_record_bytes`` are refused as too large, except those the
        schema's ``[select]`` is not for: they are skipped as any other of their kind is (a
        Suricata stats event with per-thread counters passes 64 KiB every interval, and is
        not a bad record).  Each is parsed only to learn its kind; returns the skipped."""
        limit, select = self.max_record_bytes, self.schema.select is not None
        skipped: list[int] = []
        for i, size in oversized:
            v = values[i]
            if select and v and v.lstrip()[:1] == b"{":
                try:
                    obj = orjson.loads(v)
                except orjson.JSONDecodeError:
                    obj = None
                if type(obj) is dict and select_records([i], [obj], self.schema)[2]:
                    skipped.append(i)
                    continue
            rejected.append(Rejected(i, TOO_LARGE, _too_large(v, size, limit)))
        return skipped

    def _parse_json(
        self, values: Sequence[bytes | None], idx: list[int], rejected: list[Rejected]
    ) -> tuple[list[int], list[dict]]:
        raw = [values[i] or b"" for i in idx]  # idx holds the records with a value
        try:
            objs = list(map(orjson.loads, raw))
            if all(type(o) is dict for o in objs):
                return idx, objs
        except orjson.JSONDecodeError:
            pass
        good, objs = [], []
        for i, v in zip(idx, raw):
            try:
                obj = orjson.loads(v)
            except orjson.JSONDecodeError as exc:
                got = self._reparse_json(i, v, exc)
                if isinstance(got, Rejected):
                    rejected.append(got)
                    continue
                obj = got
            if type(obj) is not dict:
                rejected.append(
                    Rejected(i, INVALID_JSON, f"a JSON {type(obj).__name__}, not an object")
                )
                continue
            good.append(i)
            objs.append(obj)
        return good, objs

    @staticmethod
    def _reparse_json(i: int, value: bytes, exc: Exception) -> Any:
        """What orjson refused, looked at again: JSON that is valid but beyond orjson (an
        integer past 64 bits, a number past float range) is the record, parsed by Python's
        parser (a value out of range in a feature is then refused by the encoder, in an unused
        field it is carried); anything else is a :class:`Rejected` with the right reason."""
        if "surrogate" in str(exc):
            return Rejected(i, INVALID_JSON, f"not valid Unicode text: {exc}"[:200])
        constants: list[str] = []

        def note(name: str) -> float:
            constants.append(name)
            return float(name)

        try:
            obj = json.loads(value, parse_constant=note)
        except (ValueError, RecursionError):
            return Rejected(i, INVALID_JSON, f"not valid JSON: {exc}"[:200])
        if constants:  # NaN/Infinity are not JSON, though Python's json.dumps writes them
            return Rejected(i, NON_FINITE, f"{constants[0]} literal in the JSON")
        if type(obj) is not dict:
            return Rejected(i, INVALID_JSON, f"a JSON {type(obj).__name__}, not an object")
        return obj

    # -- CSV ----------------------------------------------------------------------------
    def _parse_csv(
        self, values: Sequence[bytes | None], idx: list[int], rejected: list[Rejected]
    ) -> tuple[list[int], list[Column]]:
        good, parts = [], []
        for i in idx:
            line = values[i].strip()  # type: ignore[union-attr]
            if b'"' in line:  # KDD lines have no quoting: a quoted comma would shift columns
                rej = _not_csv(i, line, 0)
                rejected.append(
                    rej
                    if rej.reason == INVALID_JSON
                    else Rejected(
                        i, INVALID_CSV, "quoted fields are not part of the KDD CSV layout"
                    )
                )
                continue
            p = line.split(b",")
            if len(p) not in _CSV_FIELDS:
                rejected.append(_not_csv(i, line, len(p)))
                continue
            good.append(i)
            parts.append(p)
        columns: list[Column] = []
        for f, c in zip(self.schema.fields, self._csv_columns):
            raw = [p[c] for p in parts]
            if f.kind == "categorical":
                columns.append([b.decode("utf-8", "replace") for b in raw])
                continue
            try:
                columns.append(np.array(raw, dtype=np.bytes_).astype(np.float64))
            except ValueError:  # one or more values are not numbers: let the encoder say which
                columns.append([_float_or_text(b) for b in raw])
        return good, columns


CARRIED = "_stream_od"  # where a windows stage puts its values in a record


def with_window_values(record: dict, values: dict[str, list[float]]) -> dict:
    """``record`` with window roles' values added for a downstream stage (a new dict)."""
    own = record.get(CARRIED)
    own = dict(own) if type(own) is dict else {}
    windows = own.get("windows")
    own["windows"] = {**(windows if type(windows) is dict else {}), **values}
    return {**record, CARRIED: own}


def _carried(
    records: Sequence[dict], role: str, out: np.ndarray, rejected: dict[int, tuple[str, str]]
) -> None:
    """Read a carried role's values into ``out``; a record without them is refused (the
    upstream stage that adds them is missing, or the record skipped it)."""
    width = out.shape[1]
    for i, values in enumerate(path_values(records, f"{CARRIED}.windows.{role}")):
        if (
            type(values) is list
            and len(values) == width
            and all(type(v) is float and math.isfinite(v) for v in values)
        ):
            out[i] = values
        elif i not in rejected:
            rejected[i] = (
                MISSING_FEATURE,
                f"missing feature: the {role!r} window values "
                f"({CARRIED}.windows.{role}, {width} numbers) that "
                "the windows stage adds",
            )


def _event_time(value: bytes | None, time_field: str, tagged: bool = False) -> float | None:
    """A raw JSON record's event time in epoch seconds (None when it has none); ``tagged``:
    a tagged record's (``{"conn": {...}}``) is the time of the record inside."""
    try:
        obj = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    inner = untagged(obj) if tagged else None
    return epoch_seconds(field_value(obj if inner is None else inner[1], time_field))


def _not_csv(i: int, line: bytes, n_fields: int) -> Rejected:
    """A line that is not a KDD CSV line: say so, or say it is a JSON value but no object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Rejected(
            i,
            INVALID_CSV,
            f"{n_fields} comma-separated fields, expected {_CSV_FIELDS[0]} or {_CSV_FIELDS[1]}",
        )
    return Rejected(i, INVALID_JSON, f"a JSON {type(value).__name__}, not an object")


def _too_large(value: bytes | None, size: int, limit: int) -> str:
    v = len(value) if value else 0
    extra = f" (value {v}, key {size - v})" if size != v else ""
    return f"{size} bytes{extra} > max_record_bytes {limit}"


def _float_or_text(b: bytes) -> float | str:
    try:
        return float(b)
    except ValueError:
        return b.decode("utf-8", "replace")
