"""Feature schemas: which fields of a record a detector reads, and how, as data.

``load_schema("zeek-conn")`` gives a built-in schema (``builtin/*.toml``), ``load_schema(path)``
a user's TOML file.  See :mod:`stream_od.schema.fields` for the field kinds and the
missing-value policy, :mod:`stream_od.schema.spec` for the schema itself.
"""

from __future__ import annotations

import os
from importlib import resources

from stream_od.schema.fields import Field, SchemaError
from stream_od.schema.kdd import DEFAULT_FEATURES, KDD_CATEGORICAL, KDD_COLUMNS
from stream_od.schema.spec import FeatureSchema

BUILTIN: tuple[str, ...] = ("kdd99", "kdd99-full", "zeek-conn", "suricata-flow")

__all__ = ["BUILTIN", "DEFAULT_FEATURES", "KDD_CATEGORICAL", "KDD_COLUMNS", "FeatureSchema",
           "Field", "SchemaError", "load_schema"]


def load_schema(name_or_path: str | os.PathLike) -> FeatureSchema:
    """A built-in schema by name, or a schema from a TOML file."""
    text_name = os.fspath(name_or_path)
    if text_name in BUILTIN:
        text = resources.files("stream_od.schema").joinpath(f"builtin/{text_name}.toml")
        return FeatureSchema.from_toml(text.read_text(encoding="utf-8"), source=text_name)
    if not os.path.isfile(text_name):
        raise SchemaError(f"schema {text_name!r}: not a built-in schema ({', '.join(BUILTIN)}) "
                          "and no such file")
    with open(text_name, encoding="utf-8") as fh:
        return FeatureSchema.from_toml(fh.read(), source=text_name)
