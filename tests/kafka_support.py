"""Helpers for tests that talk to the real local broker (see tests/conftest.py for fixtures)."""

from __future__ import annotations

import uuid

from stream_od.kafka import topics
from stream_od.kafka.reader import read_to_end  # noqa: F401 - re-exported for tests


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> str:
    """Create ``name`` and return once every partition has a leader."""
    topics.ensure_topics({"bootstrap.servers": bootstrap}, {name: partitions}, config=config)
    return name


def delete_topics(bootstrap: str, names: list[str]) -> None:
    topics.delete_topics({"bootstrap.servers": bootstrap}, names)
