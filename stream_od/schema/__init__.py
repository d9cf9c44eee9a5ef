"""Feature schemas: which fields of a record a detector reads, and how, as data.

``load_schema("zeek-conn")`` gives a built-in schema (``builtin/*.toml``), ``load_schema(path)``
a user's TOML file.  See :mod:`stream_od.schema.fields` for the field kinds and the
missing-value policy, :mod:`stream_od.schema.spec` for the schema itself.
"""

from __future__ import annotations

import json
import os
import tomllib
from importlib import resources

from stream_od.schema.fields import Field, SchemaError
from stream_od.schema.kdd import DEFAULT_FEATURES, KDD_CATEGORICAL, KDD_COLUMNS
from stream_od.schema.spec import FeatureSchema

BUILTIN: tuple[str, ...] = (
    "kdd99",
    "kdd99-full",
    "zeek-conn",
    "zeek-conn-windows",
    "suricata-flow",
    "suricata-flow-windows",
)

__all__ = [
    "BUILTIN",
    "DEFAULT_FEATURES",
    "KDD_CATEGORICAL",
    "KDD_COLUMNS",
    "FeatureSchema",
    "Field",
    "SchemaError",
    "load_schema",
]


def load_schema(name_or_path: str | os.PathLike) -> FeatureSchema:
    """A built-in schema by name, or a schema from a TOML file (or JSON, ``*.json``).

    ``extends = "<built-in>"`` in a schema starts from that built-in schema: its fields come
    first, the extending schema's ``[[fields]]`` follow, and its other keys (``[windows]``,
    ``name``, ...) replace the built-in's.
    """
    source = os.fspath(name_or_path)
    return FeatureSchema.from_dict(_data(source), source=source)


def _data(source: str, depth: int = 0) -> dict:
    if source in BUILTIN:
        text = (
            resources.files("stream_od.schema")
            .joinpath(f"builtin/{source}.toml")
            .read_text(encoding="utf-8")
        )
    elif os.path.isfile(source):
        try:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
        except UnicodeDecodeError:
            raise SchemaError(f"{source}: not a schema (not UTF-8 text: TOML or JSON)") from None
    elif os.path.isdir(source):
        raise SchemaError(f"schema {source!r} is a directory: name a TOML or JSON file")
    else:
        raise SchemaError(
            f"schema {source!r}: not a built-in schema ({', '.join(BUILTIN)}) and no such file"
        )
    try:
        data = json.loads(text) if source.endswith(".json") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        kind = "JSON" if source.endswith(".json") else "TOML"
        raise SchemaError(f"{source}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: a schema is a table/object")
    base = data.pop("extends", None)
    if base is None:
        return data
    if base not in BUILTIN or depth > 2:
        raise SchemaError(
            f"{source}: extends {base!r}, which is not a built-in schema ({', '.join(BUILTIN)})"
        )
    merged = _data(base, depth + 1)
    fields = merged.get("fields", []) + data.pop("fields", [])
    merged.update(data)
    merged["fields"] = fields
    return merged
