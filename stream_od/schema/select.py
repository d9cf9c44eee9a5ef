"""Which records of a topic a schema is for, as schema data.

A sensor's topic rarely carries one record type.  Suricata writes every EVE event type (flow,
alert, dns, http, tls, stats, ...) to one ``eve.json``, and a shipper sends them on as they
come; Zeek shippers that merge logs into one topic (Corelight's JSON streaming logs, Security
Onion, zeek-kafka) mark each record's log in ``_path``.  A ``stats`` event scored by a flow
model is a flow with every counter missing: an alert about nothing.  So a schema may name the
field that says what a record is and the values it is for::

    [select]
    field = "event_type"      # a field path, looked up as the feature fields are
    values = ["flow"]

The zeek-kafka plugin with ``Kafka::tag_json = T`` (common with ``send_all_active_logs``, every
log on one topic) writes no ``_path`` but wraps each record in its log's name:
``{"conn": {...}}``.  With ``tagged = true`` such a record's tag is its kind, and the object
under it is the record (scored, windowed and put in alerts without the wrapper).

A record whose field holds another value is **skipped**: not scored, not dead-lettered (it is
a good record of another kind), counted (``stream_od_records_skipped_total{reason=
"not_selected"}``) and committed with its batch.  A record without the field is kept: a flow
written by something other than the sensor, without the sensor's marker, is still a flow.
Training, ``evaluate``, ``score`` and the worker all skip the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stream_od.schema.fields import SchemaError

#: the reason a skipped record is counted under (the worker's metric label)
NOT_SELECTED = "not_selected"


@dataclass(frozen=True)
class SelectSpec:
    field: str
    values: tuple[str, ...]
    tagged: bool = False  # records may come as {kind: record} (zeek-kafka's tag_json)

    def keeps(self, value: Any) -> bool:
        """Whether a record whose ``field`` holds ``value`` (``None``: absent) is for this
        schema.  A value that is not text (a number, an object) is no marker this schema
        knows, so it is kept, as an absent one is, and the features decide."""
        return type(value) is not str or value in self.values

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "values": list(self.values)}
        if self.tagged:
            out["tagged"] = True
        return out

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "schema") -> SelectSpec:
        if not isinstance(d, Mapping):
            raise SchemaError(f'{source}: [select] is a table: field = "path", values = [...]')
        unknown = sorted(set(d) - {"field", "values", "tagged"})
        if unknown:
            raise SchemaError(
                f"{source}: [select] has unknown key(s) {unknown}; known: ['field', 'tagged', "
                "'values']"
            )
        tagged = d.get("tagged", False)
        if not isinstance(tagged, bool):
            raise SchemaError(f"{source}: [select] tagged is true or false")
        field, values = d.get("field"), d.get("values")
        if not isinstance(field, str) or not field:
            raise SchemaError(f"{source}: [select] field must be a field path (text)")
        if (
            not isinstance(values, Sequence)
            or isinstance(values, str)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise SchemaError(
                f"{source}: [select] values must be a non-empty list of the {field!r} values "
                'this schema is for (text), e.g. values = ["flow"]'
            )
        return cls(field=field, values=tuple(dict.fromkeys(values)), tagged=tagged)


def untagged(record: dict) -> tuple[str, dict] | None:
    """``(tag, record)`` of a tagged record, ``{"conn": {...}}``: an object under its first
    key, and nothing else but text beside it (zeek-kafka's ``additional_message_values``, e.g.
    ``"sensor": "edge-1"``, written after the tagged object; they join the record, its own
    fields first).  ``None`` for any other record: a sensor's own records start with a time
    or an address, not an object."""
    for tag, inner in record.items():  # the first item only
        if type(inner) is not dict:
            return None
        if len(record) == 1:
            return tag, inner
        extra = {k: v for k, v in record.items() if k != tag}
        if not all(type(v) is str for v in extra.values()):
            return None
        return tag, {**inner, **{k: v for k, v in extra.items() if k not in inner}}
    return None
