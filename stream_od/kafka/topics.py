"""Topic checks and creation with the admin API."""

from __future__ import annotations

import time
from typing import Any, Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from stream_od.errors import ConfigError


def missing_topics(client_config: dict[str, Any], names: Iterable[str],
                   timeout: float = 10.0) -> list[str]:
    """The names among ``names`` that do not exist on the cluster."""
    admin = AdminClient(client_config)
    try:
        present = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise ConfigError(f"cannot reach Kafka at {client_config.get('bootstrap.servers')}: "
                          f"{exc}; check bootstrap_servers (STREAM_OD_BOOTSTRAP_SERVERS)") from exc
    return [n for n in names if n not in present]


def ensure_topics(client_config: dict[str, Any], specs: dict[str, int],
                  config: dict[str, str] | None = None, timeout: float = 30.0) -> None:
    """Create each ``{name: partitions}`` topic that is missing, and wait until it has leaders."""
    admin = AdminClient(client_config)
    missing = missing_topics(client_config, specs)
    if missing:
        futures = admin.create_topics([NewTopic(n, num_partitions=specs[n], replication_factor=1,
                                                config=config or {}) for n in missing])
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=5).topics
        if all(n in meta and meta[n].error is None and meta[n].partitions
               and all(p.leader >= 0 for p in meta[n].partitions.values()) for n in specs):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics {sorted(specs)} have no leaders after {timeout} s")


def delete_topics(client_config: dict[str, Any], names: Iterable[str],
                  timeout: float = 30.0) -> None:
    """Delete ``names``; a topic that is already gone is not an error."""
    names = list(names)
    if not names:
        return
    for future in AdminClient(client_config).delete_topics(names, operation_timeout=10).values():
        try:
            future.result(timeout=timeout)
        except KafkaException:
            pass
