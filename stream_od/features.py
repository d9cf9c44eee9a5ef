"""From field values to the standardized matrix a detector reads.

:class:`FeatureEncoder` turns the values of a schema's fields into the feature matrix (numeric
transforms and clipping, one-hot categories with an ``<other>`` column, booleans, "was missing"
indicators); :func:`fit_schema` fits the categorical vocabularies on training records;
:class:`Standardizer` centres and scales the matrix.  Training and serving both go through here.
"""

from __future__ import annotations

import collections
import itertools
import math
import operator
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stream_od.schema import FeatureSchema, Field, SchemaError


class Standardizer:
    """Per-feature ``(x - mean_) / scale_``, fitted on normal training rows.

    ``scale_`` is the population standard deviation (``ddof=0``, as the reference
    protocol); a constant feature gets scale 1 so it maps to 0 instead of NaN, except a 0/1
    column named in ``binary`` (:meth:`fit`).
    """

    def __init__(self) -> None:
        self.held_ = np.empty(0, dtype=np.intp)  # set by fit / from_dict

    def fit(
        self, X: np.ndarray, binary: Sequence[int] = (), held: Sequence[int] = ()
    ) -> Standardizer:
        """``binary``: columns that hold only 0 or 1 (one-hot, boolean, "was missing"; see
        :attr:`stream_od.schema.FeatureSchema.binary_columns`).  One of them that never varied
        in the ``n`` fit rows gets :func:`never_varied_scale` instead of 1.  Why: z-scoring
        gives a 0/1 value seen once in ``n`` rows a weight of about ``sqrt(n)``, so with scale 1
        a value the training traffic never had at all (a connection direction, a protocol, a
        missing field it always had) would weigh ``sqrt(n)`` times *less* than a rare one: the
        more novel, the less anomalous.  The floor treats it as at least as rare as the rarest
        value seen.  A numeric column that never varied keeps scale 1: its unit is unknown.

        ``held``: columns :meth:`transform` holds at the fit rows' value (0), whatever the row
        has: those of a field no training record carried (:func:`absent_fields`).  The fit
        rows said nothing about such a field, so when the sensor starts writing it (Zeek's
        ``local_orig``/``local_resp`` once ``Site::local_nets`` is set, a field a Suricata
        upgrade adds) that is a change of the sensor's configuration, not of the traffic; with
        its columns scored, every record would move by a never-seen value at once and alert.
        The model ignores the field until it is retrained on traffic that has it."""
        X = check_matrix(X)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0.0, scale, 1.0)
        columns = np.asarray(binary, dtype=np.intp)
        never_varied = columns[scale[columns] == 0.0]
        self.scale_[never_varied] = never_varied_scale(X.shape[0])
        self.n_features_in_ = X.shape[1]
        self.held_ = _held_columns(held, X.shape[1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = check_matrix(X, n_features=self.n_features_in_)
        out = (X - self.mean_) / self.scale_
        if self.held_.size:
            out[:, self.held_] = 0.0  # what every fit row had there: (c - c) / scale
        return out

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_dict(self) -> dict[str, Any]:
        # Python's float repr round-trips exactly, so JSON keeps every bit.
        out: dict[str, Any] = {
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
        }
        if self.held_.size:  # written only when there are some: older readers need not know
            out["held"] = [int(c) for c in self.held_]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Standardizer:
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise ValueError("standardizer mean and scale must be equal-length lists")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("standardizer mean/scale must be finite with scale > 0")
        held = d.get("held", [])
        if not (isinstance(held, list) and all(type(c) is int for c in held)):
            raise ValueError("standardizer held columns must be a list of column indices")
        self = cls()
        self.mean_, self.scale_, self.n_features_in_ = mean, scale, mean.shape[0]
        self.held_ = _held_columns(held, mean.shape[0])
        return self


def _held_columns(columns: Sequence[int], width: int) -> np.ndarray:
    held = np.asarray(sorted(set(columns)), dtype=np.intp)
    if held.size and (held[0] < 0 or held[-1] >= width):
        raise ValueError(f"held columns {held.tolist()} out of range for {width} features")
    return held


#: how a 0/1 column that never varied in the fit rows is scaled: ``rarest`` (as if one row of
#: ``n + 1`` had differed, :func:`never_varied_scale`) or ``unit`` (scale 1, as before
#: 2026-12-07); the first is the default of site training
NEVER_VARIED = ("rarest", "unit")


def never_varied_scale(n: int) -> float:
    """The standard deviation of a 0/1 column in which one row of ``n + 1`` differs from the
    others (the add-one estimate of a share never seen in ``n`` rows): a change in a column
    that never varied in training then weighs as much as a value seen once, about
    ``sqrt(n + 1)`` (31 for 981 rows)."""
    p = 1.0 / (n + 1)
    return math.sqrt(p * (1.0 - p))


def check_matrix(X: Any, *, n_features: int | None = None) -> np.ndarray:
    """A finite 2-D float64 array (a 1-D array is one row)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_rows, n_features), got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features, got {X.shape[1]}")
    if not np.isfinite(X).all():
        raise ValueError("input contains NaN or infinity")
    return X


# -- field values -> feature matrix ------------------------------------------------------------

# Dead-letter reasons the encoder can give (the decoder adds the ones about bytes and JSON).
MISSING_FEATURE = "missing_feature"
NON_NUMERIC = "non_numeric"
NON_FINITE = "non_finite"
INVALID_TYPE = "invalid_type"
# a JSON object that carries none of the schema's fields: not a record of this schema at all
NO_SCHEMA_FIELDS = "no_schema_fields"

_NUMBER = frozenset({int, float})
_NUMBER_OR_NONE = frozenset({int, float, type(None)})
_BOOL_OR_NONE = frozenset({bool, type(None)})
_TRUE = frozenset({"T", "true", "True", "1"})
_FALSE = frozenset({"F", "false", "False", "0"})

Column = Sequence[Any] | np.ndarray
"""One field's raw values for a batch: a list of JSON values (``None`` = missing), or a float
array already parsed (the KDD CSV path; such a column has no missing values)."""


def category_key(value: Any) -> str | None:
    """The vocabulary key of a categorical value; ``None`` for a value that has none (an
    object or an array).  JSON ``true`` and Zeek's ``T`` both read as ``"true"``; a number
    as its shortest text (``443``, not ``443.0``)."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if t is bytes:
        return value.decode("utf-8", "replace")
    return None


#: An integer event time at or above this is epoch *milliseconds*: Zeek's JSON writer with
#: ``JSON::TS_MILLIS`` (``LogAscii::json_timestamps``, or the zeek-kafka plugin's
#: ``Kafka::json_timestamps``) writes ``time`` values as unsigned integer milliseconds.  As
#: seconds, 1e11 would be the year 5138; as milliseconds it is March 1973, so the two ranges of
#: real capture times cannot be confused.
MILLIS_FROM = 10**11


def epoch_seconds(value: object) -> float | None:
    """An event time as epoch seconds: a number, or an ISO 8601 string (UTC when it has no
    offset); ``None`` when absent, non-finite, unparsable or outside :func:`plausible_time`.

    An integer from :data:`MILLIS_FROM` up is epoch milliseconds (Zeek's ``JSON::TS_MILLIS``)
    and is divided by 1000; a float is always seconds (Zeek's default ``TS_EPOCH``).  An
    integer beyond float range (valid JSON that only Python's parser reads) is ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            seconds = value / 1000 if type(value) is int and value >= MILLIS_FROM else float(value)
        except OverflowError:
            return None
        return seconds if plausible_time(seconds) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
        return seconds if plausible_time(seconds) else None
    return None


def plausible_time(seconds: float) -> bool:
    """Whether epoch ``seconds`` can be a capture's time: from 1970 to before 1e11 s (the year
    5138; NaN and infinities are not).  A time past that (microseconds or nanoseconds sent as
    seconds, a corrupt field) is treated as no time at all: taken as the latest time seen, it
    would make every traffic window look forgotten and its own key's window grow without end."""
    return 0.0 <= seconds < MILLIS_FROM


@dataclass
class Encoded:
    """The matrix of a batch, and the rows that could not be encoded (first problem each)."""

    X: np.ndarray
    rejected: dict[int, tuple[str, str]]


class FeatureEncoder:
    """Field values -> the ``(n, n_features)`` float64 matrix of a fitted schema.

    The one place where records become features: training, ``evaluate``, ``score`` and the
    worker all call :meth:`encode`.  Work is per column (vectorised), except for values that
    need a look each (categories, and a column holding a missing or malformed value).
    """

    def __init__(self, schema: FeatureSchema):
        if not schema.fitted:
            raise SchemaError(
                f"schema {schema.name!r} is not fitted: its categorical "
                "vocabularies come from training records (fit_schema)"
            )
        self.schema = schema
        self.feature_names = schema.field_columns  # window columns: stream_od.windows
        self._slots: list[tuple[Field, int]] = list(schema.field_starts())
        self.n_features = len(self.feature_names)
        self._vocab = {
            f.name: {v: i for i, v in enumerate(f.vocabulary or ())}
            for f in schema.fields
            if f.kind == "categorical"
        }

    def encode(self, columns: Sequence[Column], n: int) -> Encoded:
        """``columns[j]`` holds the values of ``schema.fields[j]`` for ``n`` records."""
        if len(columns) != len(self._slots):
            raise ValueError(f"expected {len(self._slots)} columns, got {len(columns)}")
        X = np.zeros((n, self.n_features))
        rejected: dict[int, tuple[str, str]] = {}
        # Rows that carry none of the fields so far.  A sensor's record always has some (a
        # Zeek conn record its counters, an S0 one included); one with none is another kind
        # of JSON (a shipper's envelope, another log on the topic), and scored with every
        # field at its default it would be an alert about nothing, for every such record.
        # Free on real traffic: the first column that no row lacks ends the search.
        bare: np.ndarray | None = np.ones(n, dtype=bool) if n else None
        for (f, start), values in zip(self._slots, columns):
            if f.kind == "categorical":
                missing = self._categorical(f, values, X, start, rejected, bare is not None)
            else:
                missing = self._number(f, values, X, start, rejected)
            if bare is not None:
                bare = None if missing is None else bare & missing
                if bare is not None and not bare.any():
                    bare = None
        if bare is not None:
            detail = (
                f"none of the {len(self._slots)} fields of schema {self.schema.name!r} is in "
                "the record: a record of another kind, or one wrapped by what shipped it "
                "(Filebeat's JSON puts the sensor's line in \"message\")"
            )
            for r in np.flatnonzero(bare):
                _reject(rejected, int(r), NO_SCHEMA_FIELDS, detail)
        return Encoded(X=X, rejected=dict(sorted(rejected.items())))

    # -- kinds --------------------------------------------------------------------------
    def _number(
        self,
        f: Field,
        values: Column,
        X: np.ndarray,
        start: int,
        rejected: dict[int, tuple[str, str]],
    ) -> np.ndarray | None:
        """Writes the field's columns; returns which rows lacked it (None: none did)."""
        x, missing = _numbers(f, values, rejected)
        bad = ~np.isfinite(x)
        if missing is not None:
            bad &= ~missing
        for r in np.flatnonzero(bad):
            _reject(rejected, int(r), NON_FINITE, f"non-finite value for {f.name}: {x[r]}")
        if missing is not None:
            if f.missing == "reject":
                for r in np.flatnonzero(missing):
                    _reject(
                        rejected,
                        int(r),
                        MISSING_FEATURE,
                        f"missing feature: {f.path} (absent or null)",
                    )
                x[missing] = 0.0
            else:
                x[missing] = float(f.default)  # type: ignore[arg-type]
        if bad.any():
            x[bad] = 0.0
        if f.clip is not None:
            lo, hi = f.clip
            x = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        if f.transform == "log1p":
            x = np.sign(x) * np.log1p(np.abs(x))
        X[:, start] = x
        if f.indicator and missing is not None:
            X[:, start + 1] = missing
        return missing

    def _categorical(
        self,
        f: Field,
        values: Column,
        X: np.ndarray,
        start: int,
        rejected: dict[int, tuple[str, str]],
        want_missing: bool = False,
    ) -> np.ndarray | None:
        """Writes the field's one-hot columns; with ``want_missing``, returns which rows
        lacked it (None: none did, or not asked)."""
        vocab = self._vocab[f.name]
        keys = categorical_keys(f, values, rejected)
        idx = np.array(
            list(map(vocab.get, keys, itertools.repeat(len(vocab), len(keys)))), dtype=np.int64
        )
        X[np.arange(len(keys)), start + idx] = 1.0
        if not want_missing or isinstance(values, np.ndarray) or None not in values:
            return None
        return np.fromiter(map(operator.is_, values, itertools.repeat(None)), bool, len(values))


def _numbers(
    f: Field, values: Column, rejected: dict[int, tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The column as floats, and which rows were missing (``None``: none was)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=True), None
    types = set(map(type, values))
    if types <= (_NUMBER_OR_NONE if f.kind == "numeric" else _BOOL_OR_NONE):
        # numpy reads None as NaN, and a decoded JSON number is never NaN (NaN is no JSON), so
        # NaN marks exactly the missing values: one C-level pass, even for columns with gaps.
        try:
            x = np.asarray(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float range: the loop below says which
            pass
        else:
            missing = np.isnan(x)
            return x, (missing if missing.any() else None)
    n = len(values)
    x = np.zeros(n)
    missing = np.zeros(n, dtype=bool)
    read = _read_number if f.kind == "numeric" else _read_bool
    for r, v in enumerate(values):
        if v is None:
            missing[r] = True
            continue
        got = read(v)
        if got is None:
            _reject(
                rejected,
                r,
                NON_NUMERIC,
                f"non-numeric value for {f.name}: {_short(v)}"
                if f.kind == "numeric"
                else f"not a boolean for {f.name}: {_short(v)}",
            )
        else:
            x[r] = got
    return x, (missing if missing.any() else None)


def _read_number(v: Any) -> float | None:
    if type(v) in _NUMBER:
        try:
            return float(v)
        except OverflowError:
            return math.inf
    return None


def _read_bool(v: Any) -> float | None:
    t = type(v)
    if t is bool or t in _NUMBER:
        return 1.0 if v else 0.0
    if t is str:
        return 1.0 if v in _TRUE else 0.0 if v in _FALSE else None
    return None


def categorical_keys(
    f: Field, values: Column, rejected: dict[int, tuple[str, str]] | None
) -> list[str]:
    """Vocabulary keys of a categorical column; a missing value takes the field's default
    (or is rejected), a value without a key (object, array) is rejected."""
    types = set(map(type, values))
    if types == {str}:  # the usual column: the values are the keys (C-level checks only)
        return list(values)
    if types == {int}:
        return list(map(str, values))
    keys: list[str | None] = list(map(category_key, values))
    if None not in keys:
        return keys  # type: ignore[return-value]  # no None left: list[str]
    for r, (k, v) in enumerate(zip(keys, values)):
        if k is not None:
            continue
        if v is None:
            if f.missing == "default":
                keys[r] = category_key(f.default)
                continue
            if rejected is not None:
                _reject(rejected, r, MISSING_FEATURE, f"missing feature: {f.path} (absent or null)")
        elif rejected is not None:
            _reject(
                rejected,
                r,
                INVALID_TYPE,
                f"{f.name} is a category, got a JSON {type(v).__name__}: {_short(v)}",
            )
        keys[r] = ""
    return keys  # type: ignore[return-value]


def unseen_counts(X: np.ndarray, schema: FeatureSchema) -> dict[str, int]:
    """How many rows of ``X`` (encoded with ``schema``) carry, in each categorical field, a
    value the training traffic did not have: the rows with a 1 in its ``<other>`` column."""
    return _ones(X, schema.unseen_columns)


def missing_counts(X: np.ndarray, schema: FeatureSchema) -> dict[str, int]:
    """How many rows of ``X`` lacked each field that has a "was missing" indicator column."""
    return _ones(X, schema.missing_columns)


def missing_shares(X: np.ndarray, schema: FeatureSchema) -> dict[str, float]:
    """:func:`missing_counts` as shares of the rows (``{}`` for no rows): the baseline a model
    stores in ``metrics["missing_field_share"]``."""
    return _shares(X, schema.missing_columns)


def unseen_shares(X: np.ndarray, schema: FeatureSchema) -> dict[str, float]:
    """:func:`unseen_counts` as shares of the rows (``{}`` for no rows): the baseline a model
    stores in ``metrics["unseen_category_share"]`` and what ``evaluate`` reports beside it."""
    return _shares(X, schema.unseen_columns)


def _ones(X: np.ndarray, columns: dict[str, int]) -> dict[str, int]:
    """The number of rows with a 1 in each of ``columns`` (0/1 columns of ``X``)."""
    if not columns:
        return {}
    sums = X[:, list(columns.values())].sum(axis=0) if len(X) else np.zeros(len(columns))
    return {name: int(round(float(c))) for name, c in zip(columns, sums)}


def _shares(X: np.ndarray, columns: dict[str, int]) -> dict[str, float]:
    """:func:`_ones` as shares of the rows; ``{}`` for no rows."""
    n = len(X)
    return {name: count / n for name, count in _ones(X, columns).items()} if n else {}


def fit_schema(schema: FeatureSchema, columns: Sequence[Column]) -> FeatureSchema:
    """Fit the categorical vocabularies on training columns (as :meth:`FeatureEncoder.encode`
    takes them): the values seen at least ``min_count`` times, most frequent first (ties by
    value, so the order is reproducible), at most ``max_categories``.

    A field that no training record carries is an error: its path is most likely wrong.  Except
    a boolean or categorical field with a default: sensors leave such a field out when it does
    not apply, is not configured or predates the sensor's version (Zeek's
    ``local_orig``/``local_resp`` are unset in every record when ``Site::local_nets`` is empty,
    the default of a plain ``zeek -r``; Suricata's EVE writes ``tcp.syn``/``rst``/... only when
    the flag was seen, ``tcp.state`` only for TCP, and ``flow.reason`` only in recent versions),
    so a capture may lack it throughout.  Such a field takes its default in every row (a
    categorical's vocabulary is then its default alone); a warning names it, in case the path
    is wrong.
    """
    if len(columns) != len(schema.fields):
        raise ValueError(f"expected {len(schema.fields)} columns, got {len(columns)}")
    vocabularies: dict[str, tuple[str, ...]] = {}
    for f, values in zip(schema.fields, columns):
        if _absent(values):
            if f.kind in ("boolean", "categorical") and f.missing == "default":
                default = str(f.default).lower() if f.kind == "boolean" else repr(f.default)
                warnings.warn(
                    f"field {f.name!r}: no training record has {f.path!r}, so it takes its "
                    f"default ({default}) in all of them (check the path if the sensor does "
                    "write it)",
                    UserWarning,
                    stacklevel=2,
                )
            else:
                raise SchemaError(
                    f"field {f.name!r}: no training record has {f.path!r}; check the "
                    "path (nested paths are dotted, e.g. flow.bytes_toserver)"
                )
        if f.kind != "categorical":
            continue
        counts = collections.Counter(categorical_keys(f, values, None))
        counts.pop("", None)
        kept = sorted(
            (k for k, c in counts.items() if c >= f.min_count), key=lambda k: (-counts[k], k)
        )[: f.max_categories]
        vocabularies[f.name] = tuple(kept)
    return schema.with_vocabularies(vocabularies)


def absent_fields(schema: FeatureSchema, columns: Sequence[Column]) -> tuple[str, ...]:
    """The fields no training record carries (``columns`` as :func:`fit_schema` takes them):
    what a site's sensor did not write while the training traffic was captured.  Site
    training holds their columns at the training value when scoring (the ``held`` columns of
    :meth:`Standardizer.fit`)."""
    return tuple(f.name for f, values in zip(schema.fields, columns) if _absent(values))


def _absent(values: Column) -> bool:
    """No value at all (a parsed float column, the KDD CSV path's, is never absent)."""
    if isinstance(values, np.ndarray) or not len(values):
        return False
    return all(v is None for v in values)


def _reject(rejected: dict[int, tuple[str, str]], row: int, reason: str, detail: str) -> None:
    rejected.setdefault(row, (reason, detail[:200]))


def _short(v: Any) -> str:
    return repr(v)[:80]
