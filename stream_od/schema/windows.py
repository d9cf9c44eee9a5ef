"""Traffic-window features as schema data: which keys, how long, what counts as an error.

A flow record alone says little about a sweep, a flood or a beacon; KDD Cup '99 therefore
carries *traffic features* over the past 2 seconds and the past 100 connections of the same
host.  Sensors emit per-flow records only, so a schema may ask for such features to be
computed from the stream (:mod:`stream_od.windows` computes them, the same code for training,
``evaluate``, ``score`` and the worker).  TOML layout (``[windows]`` in a schema)::

    [windows]
    time_s = 2.0                  # the time window: connections of the key in the last 2 s
    count = 100                   # the connection window: the key's last 100 connections ...
    horizon_s = 3600.0            # ... that started at most this long before the current one
    lateness_s = 60.0             # how far event times may run out of order in a partition
    service = ["proto", "id.resp_p"]          # what "the same service" compares
    serror = { field = "conn_state", values = ["S0", "S1", "S2", "S3"] }
    rerror = { field = "conn_state", values = ["REJ"] }

    [[windows.roles]]             # one set of features per role, keyed by ``key``
    name = "src"
    key = "id.orig_h"
    peer = "id.resp_h"

Each role adds ten columns (``win.<role>.<feature>``), defined in docs/windows.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stream_od.schema.fields import SchemaError

TIME_FEATURES = ("count", "serror_rate", "rerror_rate", "same_srv_rate", "diff_peer_rate")
COUNT_FEATURES = (
    "n_count",
    "n_serror_rate",
    "n_rerror_rate",
    "n_same_srv_rate",
    "n_diff_peer_rate",
)
FEATURES = TIME_FEATURES + COUNT_FEATURES
PREFIX = "win"

_KEYS = frozenset(
    {"time_s", "count", "horizon_s", "lateness_s", "service", "serror", "rerror", "roles"}
)
_ROLE_KEYS = frozenset({"name", "key", "peer"})


@dataclass(frozen=True)
class ErrorRule:
    """A connection is an error of this kind when ``field``'s value is one of ``values``
    (compared as category keys: Zeek's ``T`` and JSON ``true`` are both ``"true"``)."""

    field: str
    values: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "values": list(self.values)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ErrorRule:
        if d is None:  # a [windows] table replaces an extended schema's whole, rules and all
            raise SchemaError(
                f"{where} is missing: an error rule is {{ field = ..., values = [...] }} (a "
                "[windows] table replaces the whole table of a schema it extends)"
            )
        if not isinstance(d, Mapping) or set(d) != {"field", "values"}:
            raise SchemaError(f"{where}: an error rule is {{ field = ..., values = [...] }}")
        values = d["values"]
        if (
            not isinstance(d["field"], str)
            or isinstance(values, str)
            or not all(isinstance(v, str) for v in values)
        ):
            raise SchemaError(f"{where}: field is a path, values a list of strings")
        return cls(field=d["field"], values=tuple(values))


@dataclass(frozen=True)
class Role:
    """Features over the connections that share ``key`` (e.g. the originator's address);
    ``peer`` is the other end, for the "different peer" rates."""

    name: str
    key: str
    peer: str


@dataclass(frozen=True)
class WindowSpec:
    roles: tuple[Role, ...]
    serror: ErrorRule
    rerror: ErrorRule
    service: tuple[str, ...] = ("proto", "id.resp_p")
    time_s: float = 2.0
    count: int = 100
    horizon_s: float = 3600.0
    lateness_s: float = 60.0  # how far event times may run out of order (restore, docs)

    def __post_init__(self) -> None:
        if not self.roles:
            raise SchemaError("windows: at least one role ([[windows.roles]])")
        names = [r.name for r in self.roles]
        if len(set(names)) != len(names):
            raise SchemaError(f"windows: role names must differ, got {names}")
        if not (0 < self.time_s <= 86_400) or not (0 < self.horizon_s <= 7 * 86_400):
            raise SchemaError(
                "windows: time_s and horizon_s are positive seconds (at most a day and a week)"
            )
        if not (0 <= self.lateness_s <= 86_400):
            raise SchemaError("windows: lateness_s is seconds, from 0 to a day")
        if not (1 <= self.count <= 100_000):
            raise SchemaError("windows: count is between 1 and 100000 connections")
        if not self.service:
            raise SchemaError("windows: service names at least one field")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f"{PREFIX}.{r.name}.{f}" for r in self.roles for f in FEATURES)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every record path the windows read (time excluded: the schema's time_field)."""
        seen: dict[str, None] = {}
        for r in self.roles:
            seen[r.key] = seen[r.peer] = None
        for p in (*self.service, self.serror.field, self.rerror.field):
            seen[p] = None
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_s": self.time_s,
            "count": self.count,
            "horizon_s": self.horizon_s,
            "lateness_s": self.lateness_s,
            "service": list(self.service),
            "serror": self.serror.to_dict(),
            "rerror": self.rerror.to_dict(),
            "roles": [{"name": r.name, "key": r.key, "peer": r.peer} for r in self.roles],
        }

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "schema") -> WindowSpec:
        where = f"{source}: windows"
        if not isinstance(d, Mapping):
            raise SchemaError(f"{where} is a table")
        unknown = set(d) - _KEYS
        if unknown:
            raise SchemaError(f"{where}: unknown key(s) {sorted(unknown)}")
        roles = []
        for raw in d.get("roles") or ():
            if (
                not isinstance(raw, Mapping)
                or set(raw) != _ROLE_KEYS
                or not all(isinstance(raw[k], str) and raw[k] for k in _ROLE_KEYS)
            ):
                raise SchemaError(f"{where}: a role is {{ name, key, peer }}, all strings")
            roles.append(Role(name=raw["name"], key=raw["key"], peer=raw["peer"]))
        service = d.get("service", ["proto", "id.resp_p"])
        if isinstance(service, str) or not all(isinstance(s, str) for s in service):
            raise SchemaError(f"{where}: service is a list of paths")
        try:
            return cls(
                roles=tuple(roles),
                service=tuple(service),
                serror=ErrorRule.from_dict(d.get("serror"), f"{where}.serror"),
                rerror=ErrorRule.from_dict(d.get("rerror"), f"{where}.rerror"),
                time_s=float(d.get("time_s", 2.0)),
                count=int(d.get("count", 100)),
                horizon_s=float(d.get("horizon_s", 3600.0)),
                lateness_s=float(d.get("lateness_s", 60.0)),
            )
        except SchemaError as exc:  # the rules' errors name their place, the checks' do not
            text = str(exc)
            raise SchemaError(text if text.startswith(where) else f"{source}: {text}") from None
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{where}: {exc}") from None
