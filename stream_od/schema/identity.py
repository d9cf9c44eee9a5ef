"""Which fields of a record say *which connection* it is, as schema data.

Alerts promote these to the SIEM's own fields (ECS ``source.ip``, OCSF ``src_endpoint``, ...)
so a rule or an analyst can correlate an alert with the sensor's logs without parsing the
record.  They are never features.  TOML layout (``[identity]`` in a schema)::

    [identity]
    source_ip = "id.orig_h"
    source_port = "id.orig_p"
    destination_ip = "id.resp_h"
    destination_port = "id.resp_p"
    transport = "proto"             # tcp / udp / icmp, or an IANA protocol number
    protocol_number = "ip_proto"    # the IP protocol number, preferred when a record has it
    session_id = "uid"              # the sensor's id of the connection (Zeek uid, EVE flow_id)
    community_id = "community_id"   # taken when the record has it, computed when not
    icmp_type = "id.orig_p"         # an ICMP message's type and code, for its Community ID
    icmp_code = "id.resp_p"         #   (Zeek puts them where the ports go; EVE: icmp_type)

Every key is optional; a path is looked up as the feature fields are (flat name first, then a
dotted path into nested JSON).  The event time is the schema's ``time_field``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from stream_od.schema.fields import SchemaError


@dataclass(frozen=True)
class IdentitySpec:
    source_ip: str | None = None
    source_port: str | None = None
    destination_ip: str | None = None
    destination_port: str | None = None
    transport: str | None = None
    protocol_number: str | None = None
    session_id: str | None = None
    community_id: str | None = None
    icmp_type: str | None = None
    icmp_code: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (getattr(self, f.name) for f in fields(self)) if p)

    def to_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "schema") -> IdentitySpec:
        if not isinstance(d, Mapping):
            raise SchemaError(f'{source}: [identity] is a table of role = "field path"')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SchemaError(
                f"{source}: [identity] has unknown key(s) {unknown}; known: {sorted(known)}"
            )
        for role, path in d.items():
            if not isinstance(path, str) or not path:
                raise SchemaError(f"{source}: [identity] {role} must be a field path (text)")
        return cls(**dict(d))
