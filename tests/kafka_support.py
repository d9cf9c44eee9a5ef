"""Helpers for tests that talk to the real local broker (see tests/conftest.py for fixtures)."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from stream_od.kafka import topics
from stream_od.kafka.reader import read_to_end  # noqa: F401 - re-exported for tests


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> str:
    """Create ``name`` and return once every partition has a leader."""
    topics.ensure_topics({"bootstrap.servers": bootstrap}, {name: partitions}, config=config)
    return name


def set_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    """Set one of ``topic``'s settings (an incremental AlterConfigs), as an operator would."""
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the futures resolve
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    topics.delete_topics({"bootstrap.servers": bootstrap}, names)


def group_done(bootstrap: str, group: str, topic: str) -> bool:
    """True when the group's committed offsets reached every partition's end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in parts]
        committed = c.committed(tps, timeout=10)
        for tp in committed:
            _, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            if tp.offset < high:
                return False
        return True
    finally:
        c.close()
