"""The secured broker for the tests: SCRAM users, ACLs and topics, made with the Admin API as the
admin user (the same calls docs/security.md shows next to the kafka-acls commands)."""

from __future__ import annotations

import functools
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

WAIT_S = 30.0  # bound on every wait for the broker to apply a change


def topic_acl(user: str, name: str, operation: AclOperation) -> AclBinding:
    return _allow(ResourceType.TOPIC, name, user, operation)


def group_acl(user: str, name: str, operation: AclOperation) -> AclBinding:
    return _allow(ResourceType.GROUP, name, user, operation)


def transactional_id_acl(user: str, name: str, operation: AclOperation) -> AclBinding:
    return _allow(ResourceType.TRANSACTIONAL_ID, name, user, operation)


def _allow(rtype: ResourceType, name: str, user: str, operation: AclOperation) -> AclBinding:
    """One LITERAL allow rule: no PREFIXED or wildcard rule is ever needed."""
    return AclBinding(
        rtype,
        name,
        ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        operation,
        AclPermissionType.ALLOW,
    )


@dataclass
class SecuredCluster:
    """The running secured broker: its address, the admin user's settings, and helpers."""

    bootstrap: str
    admin_config: dict[str, Any]  # librdkafka settings of the admin user (client.json)
    directory: Path
    script: Callable[..., subprocess.CompletedProcess]  # deploy/kafka/kafka.sh ... --secured
    ports: dict[str, int]  # client, controller, broker (inter-broker)

    @classmethod
    def start(
        cls,
        directory: Path,
        script: Callable[..., subprocess.CompletedProcess],
        ports: dict[str, int],
    ) -> SecuredCluster:
        up = script("up")
        assert up.returncode == 0, f"kafka.sh up --secured failed:\n{up.stderr}"
        config = json.loads((directory / "client.json").read_text())
        return cls(f"127.0.0.1:{ports['client']}", config, directory, script, ports)

    def client(self, user: str | None = None, password: str | None = None) -> dict[str, Any]:
        """librdkafka settings for ``user`` (the admin by default), with the bootstrap."""
        config = {**self.admin_config, "bootstrap.servers": self.bootstrap}
        if user is not None:
            config.update({"sasl.username": user, "sasl.password": password})
        return config

    def kafka_env(self, user: str, password: str) -> str:
        """``STREAM_OD_KAFKA`` for ``user``: what a deployment puts in the Secret."""
        return json.dumps(
            {k: v for k, v in self.client(user, password).items() if k != "bootstrap.servers"}
        )

    @functools.cached_property
    def admin(self) -> AdminClient:
        """One client for the session: its futures die with it, so it must outlive them."""
        return AdminClient({**self.client(), "log_level": 0})

    def add_user(self, prefix: str) -> tuple[str, str]:
        """A new SCRAM-SHA-512 user; returns ``(name, password)`` once it can authenticate."""
        name, password = f"{prefix}-{uuid.uuid4().hex[:8]}", secrets.token_hex(12)
        upsert = UserScramCredentialUpsertion(
            name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password.encode()
        )
        for future in self.admin.alter_user_scram_credentials([upsert]).values():
            future.result(WAIT_S)
        probe = AdminClient({**self.client(name, password), "log_level": 0})
        deadline = time.monotonic() + WAIT_S
        while True:  # the credential reaches the broker through the metadata log
            try:
                probe.list_topics(timeout=2)
                return name, password
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def grant(self, bindings: Iterable[AclBinding]) -> None:
        """Create the ACLs and return once the broker's authorizer has them."""
        bindings = list(bindings)
        if not bindings:
            return
        admin = self.admin
        for future in admin.create_acls(bindings).values():
            future.result(WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while not set(bindings) <= {
            acl for p in {b.principal for b in bindings} for acl in self._acls_of(admin, p)
        }:
            assert time.monotonic() < deadline, f"ACLs not applied after {WAIT_S} s: {bindings}"
            time.sleep(0.05)

    def revoke(self, binding: AclBinding) -> None:
        """Delete one ACL and return once the broker's authorizer no longer has it."""
        match = AclBindingFilter(
            binding.restype,
            binding.name,
            binding.resource_pattern_type,
            binding.principal,
            binding.host,
            binding.operation,
            binding.permission_type,
        )
        for future in self.admin.delete_acls([match]).values():
            future.result(WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while binding in self._acls_of(self.admin, binding.principal):
            assert time.monotonic() < deadline, f"ACL still there after {WAIT_S} s: {binding}"
            time.sleep(0.05)

    @staticmethod
    def _acls_of(admin: AdminClient, principal: str) -> list[AclBinding]:
        match = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            principal,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        return admin.describe_acls(match).result(WAIT_S)

    def create_topic(
        self, prefix: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin = self.admin
        admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(
            WAIT_S
        )
        deadline = time.monotonic() + WAIT_S
        while True:  # leaders elected: producers and consumers can start at once
            meta = admin.list_topics(name, timeout=5).topics.get(name)
            if (
                meta
                and meta.error is None
                and meta.partitions
                and all(p.leader >= 0 for p in meta.partitions.values())
            ):
                return name
            assert time.monotonic() < deadline, f"topic {name} has no leader"
            time.sleep(0.05)

    def produce(self, topic: str, values: list[bytes], labels: list[str] | None = None) -> None:
        """Records keyed by their index, with a ``label`` header when labels are given."""
        producer = Producer({**self.client(), "enable.idempotence": True, "linger.ms": 5})
        for i, value in enumerate(values):
            headers = [("label", str(labels[i]).encode())] if labels is not None else None
            producer.produce(topic, value=value, key=str(i).encode(), headers=headers)
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(WAIT_S) == 0
