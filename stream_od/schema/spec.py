"""The feature schema: the ordered fields a detector reads, as data.

A schema is chosen when a model is trained (a built-in name or a TOML file), its categorical
vocabularies are fitted on the training records, and the fitted schema is stored inside the
artifact (``artifact.json``, covered by the manifest and the signature).  The trainer,
``evaluate``, ``score`` and the worker all turn records into features through it, so training
and serving cannot drift apart.

TOML layout (see ``stream_od/schema/builtin/*.toml`` and docs/schemas.md)::

    name = "my-flows"
    time_field = "ts"                    # event time, epoch seconds or ISO 8601 (optional)
    label_fields = ["label"]             # ground truth: read by train/evaluate, never a feature

    [identity]                           # the connection, promoted into alerts (optional)
    source_ip = "src_ip"

    [select]                             # the records on a topic this schema is for (optional)
    field = "event_type"
    values = ["flow"]

    [[fields]]
    name = "orig_bytes"
    kind = "numeric"                     # numeric | categorical | boolean
    transform = "log1p"
    missing = "default"                  # reject | default
    default = 0
    indicator = true
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from stream_od.schema.fields import Field, SchemaError
from stream_od.schema.identity import IdentitySpec
from stream_od.schema.select import SelectSpec
from stream_od.schema.windows import WindowSpec

_KEYS = frozenset(
    {
        "name",
        "description",
        "time_field",
        "label_fields",
        "fields",
        "format_version",
        "windows",
        "identity",
        "select",
    }
)
FORMAT_VERSION = 2  # 1 was {"names": [...]}: numeric fields only, every one required


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered input fields; ``feature_names`` are the matrix columns they produce."""

    fields: tuple[Field, ...]
    name: str = "custom"
    description: str = ""
    time_field: str | None = None
    label_fields: tuple[str, ...] = ()
    windows: WindowSpec | None = None  # traffic-window features (stream_od.windows)
    identity: IdentitySpec | None = None  # the connection's fields, promoted into alerts
    select: SelectSpec | None = None  # which records of a topic it is for; others are skipped

    def __post_init__(self) -> None:
        fields = tuple(self.fields)
        if not fields:
            raise SchemaError(f"schema {self.name!r} needs at least one field")
        if not all(isinstance(f, Field) for f in fields):
            raise SchemaError("schema fields must be Field objects")
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise SchemaError(f"schema {self.name!r}: duplicate field name {f.name!r}")
            seen.add(f.name)
        labels = tuple(self.label_fields)
        clash = sorted({f.path for f in fields} & set(labels))
        if clash:
            raise SchemaError(
                f"schema {self.name!r}: {clash} is a label field and cannot also "
                "be a feature (the model must never see the ground truth)"
            )
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "label_fields", labels)
        if self.windows is not None:
            if not self.time_field:
                raise SchemaError(
                    f"schema {self.name!r}: windows need a time_field (the records' event time)"
                )
            clash = sorted(set(self.windows.paths) & set(labels))
            if clash:
                raise SchemaError(f"schema {self.name!r}: windows read label field(s) {clash}")
        if self.identity is not None:
            clash = sorted(set(self.identity.paths) & set(labels))
            if clash:
                raise SchemaError(
                    f"schema {self.name!r}: [identity] names label field(s) "
                    f"{clash}; labels never leave in an alert"
                )
        if self.select is not None and self.select.field in labels:
            raise SchemaError(
                f"schema {self.name!r}: [select] reads the label field {self.select.field!r}; "
                "records are chosen by what they are, never by their ground truth"
            )
        if self.fitted:
            names = self.feature_names
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise SchemaError(
                    f"schema {self.name!r}: feature columns {dupes} are produced "
                    "twice; rename a field"
                )

    # -- what the matrix looks like ------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """Every categorical field has its vocabulary (a schema inside an artifact is)."""
        return all(f.fitted for f in self.fields)

    @property
    def field_columns(self) -> tuple[str, ...]:
        """The columns the fields produce (the window columns follow them)."""
        return tuple(c for f in self.fields for c in f.columns)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.field_columns + (self.windows.columns if self.windows else ())

    @property
    def names(self) -> tuple[str, ...]:
        """The feature column names (kept for callers of the first schema format)."""
        return self.feature_names

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field_starts(self) -> Iterator[tuple[Field, int]]:
        """Each field with the index of its first column in the matrix (needs fitted
        vocabularies): where the encoder writes it, and where its parts are found again."""
        start = 0
        for f in self.fields:
            yield f, start
            start += len(f.columns)

    @property
    def unseen_columns(self) -> dict[str, int]:
        """Each categorical field's ``<other>`` column: the values its training traffic did
        not have (or had fewer than ``min_count`` times).  The share of records landing there
        is the plainest sign that the traffic has changed since the model was trained."""
        return {
            f.name: start + len(f.columns) - 1
            for f, start in self.field_starts()
            if f.kind == "categorical"
        }

    @property
    def missing_columns(self) -> dict[str, int]:
        """Each field's "was missing" indicator column (fields with ``indicator = true``): the
        records that lacked it.  A share far above training's says the sensor, or what ships
        its records, no longer sends the field."""
        return {
            f.name: start + 1
            for f, start in self.field_starts()
            if f.indicator and f.kind != "categorical"
        }

    @property
    def binary_columns(self) -> tuple[int, ...]:
        """The columns that hold only 0 or 1 by construction: one-hot categories (their
        ``<other>`` included), booleans and "was missing" indicators.  The standardizer gives
        such a column that never varied in training the weight of a value seen once
        (:meth:`stream_od.features.Standardizer.fit`)."""
        out: list[int] = []
        for f, start in self.field_starts():
            if f.kind in ("categorical", "boolean"):
                out.extend(range(start, start + len(f.columns)))
            elif f.indicator:
                out.append(start + 1)
        return tuple(out)

    def columns_of(self, names: Iterable[str]) -> tuple[int, ...]:
        """Every column of the named fields (needs fitted vocabularies), in matrix order."""
        wanted = set(names)
        unknown = wanted - {f.name for f in self.fields}
        if unknown:
            raise SchemaError(f"schema {self.name!r} has no field {sorted(unknown)}")
        return tuple(
            c
            for f, start in self.field_starts()
            if f.name in wanted
            for c in range(start, start + len(f.columns))
        )

    def __len__(self) -> int:
        return len(self.feature_names)

    def index(self, name: str) -> int:
        return self.feature_names.index(name)

    def with_vocabularies(self, vocabularies: Mapping[str, Iterable[str]]) -> FeatureSchema:
        fields = tuple(
            f.with_vocabulary(tuple(vocabularies[f.name])) if f.name in vocabularies else f
            for f in self.fields
        )
        return replace(self, fields=fields)

    # -- as data -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.time_field:
            out["time_field"] = self.time_field
        if self.label_fields:
            out["label_fields"] = list(self.label_fields)
        out["fields"] = [f.to_dict() for f in self.fields]
        if self.windows is not None:
            out["windows"] = self.windows.to_dict()
        if self.identity is not None:
            out["identity"] = self.identity.to_dict()
        if self.select is not None:
            out["select"] = self.select.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "schema") -> FeatureSchema:
        if not isinstance(d, Mapping):
            raise SchemaError(f"{source}: a schema is a table/object")
        if "names" in d and "fields" not in d:  # format 1: numeric names, all required
            names = d["names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise SchemaError(f"{source}: 'names' must be a list of strings")
            return cls.numeric(names)
        unknown = set(d) - _KEYS
        if unknown:
            raise SchemaError(f"{source}: unknown key(s) {sorted(unknown)}")
        raw = d.get("fields")
        if not isinstance(raw, list) or not raw:
            raise SchemaError(f"{source}: needs a non-empty list of fields ([[fields]] in TOML)")
        fields = tuple(Field.from_dict(f, where=f"{source}: ") for f in raw)
        labels = d.get("label_fields", ())
        if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
            raise SchemaError(f"{source}: label_fields is a list of field names")
        time_field = d.get("time_field")
        if time_field is not None and not isinstance(time_field, str):
            raise SchemaError(f"{source}: time_field is a field name")
        windows = d.get("windows")
        identity = d.get("identity")
        select = d.get("select")
        return cls(
            fields=fields,
            name=str(d.get("name", "custom")),
            description=str(d.get("description", "")),
            time_field=time_field,
            label_fields=tuple(labels),
            windows=None if windows is None else WindowSpec.from_dict(windows, source=source),
            identity=None if identity is None else IdentitySpec.from_dict(identity, source=source),
            select=None if select is None else SelectSpec.from_dict(select, source=source),
        )

    @classmethod
    def from_toml(cls, text: str, *, source: str = "schema") -> FeatureSchema:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def numeric(cls, names: Iterable[str], *, name: str = "custom") -> FeatureSchema:
        """Numeric fields that every record must carry (the first schema format)."""
        names = tuple(names)
        if not all(isinstance(n, str) for n in names):
            raise SchemaError("feature names must be strings")
        return cls(fields=tuple(Field(name=n) for n in names), name=name)
