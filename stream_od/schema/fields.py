"""One input field of a feature schema: where it is in a record, what kind of value it holds,
how it becomes columns of the feature matrix, and what happens when a record lacks it.

A field is addressed by ``path``: a top-level key (``duration``), Zeek's flat dotted names
(``id.orig_h`` is one key in Zeek's JSON), or a dotted path into nested JSON
(``flow.bytes_toserver`` in Suricata EVE).  The literal key is tried first, then the path.

Kinds, and the columns each one adds to the matrix:

- ``numeric``: one column; optional ``clip = [lo, hi]`` then ``transform`` (``log1p`` is
  ``sign(x) * log(1 + |x|)``, for byte and packet counts that span decades);
- ``boolean``: one column, 1.0 for true (JSON ``true``, Zeek's ``T``, a non-zero number);
- ``categorical``: one-hot over the vocabulary fitted on the training records (values seen
  at least ``min_count`` times, at most ``max_categories``), plus an ``<other>`` column that
  takes every value outside it, so a never-seen value is scored, not refused.

Missing values (the key is absent, or JSON ``null``; Zeek's JSON writer leaves unset fields
out): ``missing = "reject"`` makes such a record a dead letter (``missing_feature``);
``missing = "default"`` scores it with ``default`` in place of the value, and ``indicator``
adds a ``<name>:missing`` column that is 1.0 when the value was missing, so the detector sees
the absence itself (an unanswered SYN has no byte counts, and that is what marks it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stream_od.errors import StreamODError

KINDS = ("numeric", "categorical", "boolean")
TRANSFORMS = ("none", "log1p")
MISSING_POLICIES = ("reject", "default")
OTHER = "<other>"
MISSING_SUFFIX = ":missing"

_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
_KEYS = frozenset(
    {
        "name",
        "path",
        "kind",
        "transform",
        "clip",
        "missing",
        "default",
        "indicator",
        "min_count",
        "max_categories",
        "vocabulary",
        "description",
    }
)


class SchemaError(StreamODError, ValueError):
    """A schema that cannot be used; the message names the field and what to fix."""


@dataclass(frozen=True)
class Field:
    name: str
    path: str = ""
    kind: str = "numeric"
    transform: str = "none"
    clip: tuple[float | None, float | None] | None = None
    missing: str = "reject"
    default: float | str | bool | None = None
    indicator: bool = False
    min_count: int = 1
    max_categories: int = 64
    vocabulary: tuple[str, ...] | None = None  # fitted, categorical only
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemaError(f"a field needs a non-empty name (got {self.name!r})")
        where = f"field {self.name!r}"
        if not self.path:
            object.__setattr__(self, "path", self.name)
        if not isinstance(self.path, str) or not _PATH.match(self.path):
            raise SchemaError(
                f"{where}: path {self.path!r} can never match a record (a path "
                "is keys joined by '.', without spaces or empty parts)"
            )
        if self.kind not in KINDS:
            raise SchemaError(f"{where}: unknown kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.transform not in TRANSFORMS:
            raise SchemaError(
                f"{where}: unknown transform {self.transform!r}; one of {', '.join(TRANSFORMS)}"
            )
        if self.kind != "numeric" and (self.transform != "none" or self.clip is not None):
            raise SchemaError(f"{where}: transform and clip apply to numeric fields only")
        if self.clip is not None:
            object.__setattr__(self, "clip", _check_clip(where, self.clip))
        if self.missing not in MISSING_POLICIES:
            raise SchemaError(
                f"{where}: unknown missing policy {self.missing!r}; one of "
                f"{', '.join(MISSING_POLICIES)}"
            )
        if self.missing == "default":
            _check_default(where, self.kind, self.default)
        elif self.default is not None or self.indicator:
            raise SchemaError(f'{where}: default and indicator need missing = "default"')
        if self.indicator and self.kind == "categorical":
            raise SchemaError(
                f"{where}: a categorical field marks a missing value with its "
                "default category; indicator is for numeric and boolean fields"
            )
        if not (isinstance(self.min_count, int) and self.min_count >= 1):
            raise SchemaError(f"{where}: min_count must be an integer >= 1")
        if not (isinstance(self.max_categories, int) and self.max_categories >= 1):
            raise SchemaError(f"{where}: max_categories must be an integer >= 1")
        if self.vocabulary is not None:
            if self.kind != "categorical":
                raise SchemaError(f"{where}: only a categorical field has a vocabulary")
            vocab = tuple(self.vocabulary)
            if not all(isinstance(v, str) for v in vocab) or len(set(vocab)) != len(vocab):
                raise SchemaError(f"{where}: the vocabulary must be distinct strings")
            object.__setattr__(self, "vocabulary", vocab)

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the matrix columns this field produces (needs a fitted vocabulary)."""
        if self.kind == "categorical":
            if self.vocabulary is None:
                raise SchemaError(f"field {self.name!r}: the vocabulary is not fitted yet")
            return (*(f"{self.name}={v}" for v in self.vocabulary), f"{self.name}={OTHER}")
        if self.indicator:
            return (self.name, self.name + MISSING_SUFFIX)
        return (self.name,)

    @property
    def fitted(self) -> bool:
        return self.kind != "categorical" or self.vocabulary is not None

    def with_vocabulary(self, vocabulary: tuple[str, ...]) -> Field:
        return replace(self, vocabulary=tuple(vocabulary))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": self.path, "kind": self.kind}
        if self.transform != "none":
            out["transform"] = self.transform
        if self.clip is not None:
            out["clip"] = list(self.clip)
        out["missing"] = self.missing
        if self.missing == "default":
            out["default"] = self.default
            out["indicator"] = self.indicator
        if self.kind == "categorical":
            out["min_count"] = self.min_count
            out["max_categories"] = self.max_categories
            if self.vocabulary is not None:
                out["vocabulary"] = list(self.vocabulary)
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "") -> Field:
        if not isinstance(d, Mapping):
            raise SchemaError(f"{where}a field is a table/object, got {type(d).__name__}")
        name = d.get("name")
        unknown = set(d) - _KEYS
        if unknown:
            raise SchemaError(f"{where}field {name!r}: unknown key(s) {sorted(unknown)}")
        kwargs = dict(d)
        if "clip" in kwargs and kwargs["clip"] is not None:
            kwargs["clip"] = tuple(kwargs["clip"])
        if "vocabulary" in kwargs and kwargs["vocabulary"] is not None:
            kwargs["vocabulary"] = tuple(kwargs["vocabulary"])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SchemaError(f"{where}field {name!r}: {exc}") from None


def _check_clip(where: str, clip: Any) -> tuple[float | None, float | None]:
    try:
        lo, hi = clip
    except (TypeError, ValueError):
        raise SchemaError(f"{where}: clip is [low, high]") from None
    for v in (lo, hi):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        ):
            raise SchemaError(f"{where}: clip bounds are finite numbers")
    if lo is not None and hi is not None and lo >= hi:
        raise SchemaError(f"{where}: clip low {lo} is not below high {hi}")
    return (None if lo is None else float(lo), None if hi is None else float(hi))


def _check_default(where: str, kind: str, default: Any) -> None:
    ok = {
        "numeric": isinstance(default, (int, float))
        and not isinstance(default, bool)
        and math.isfinite(default),
        "boolean": isinstance(default, bool),
        "categorical": isinstance(default, str),
    }[kind]
    if not ok:
        want = {
            "numeric": "a finite number",
            "boolean": "true or false",
            "categorical": "a string (the category a missing value counts as)",
        }[kind]
        raise SchemaError(f'{where}: missing = "default" needs default = {want}, got {default!r}')
