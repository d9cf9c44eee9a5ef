"""The secured mode of deploy/kafka/kafka.sh itself: idempotent like the plain one, its secrets
private, the CA's key gone, and nobody in without credentials, ACLs, or (on the broker's own
listeners) the broker's certificate."""

from __future__ import annotations

import stat
import uuid

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from stream_od.errors import ConfigError
from stream_od.kafka.topics import connect

PRIVATE = (
    "client.json",
    "admin.password",
    "admin.properties",
    "server.properties",
    "tls/store.pass",
    "tls/broker.p12",
)


def test_status_and_up_again_find_the_running_broker(secured):
    status = secured.script("status")
    assert status.returncode == 0 and "secured" in status.stderr, status.stderr
    again = secured.script("up")
    assert again.returncode == 0 and "already running" in again.stderr, again.stderr


def test_its_secrets_are_private_and_the_cas_key_is_gone(secured):
    d = secured.directory
    for name in PRIVATE:
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name
    assert (d / ".gitignore").read_text() == "*\n"
    assert sorted(p.name for p in (d / "tls").iterdir()) == [
        "broker.p12",
        "ca.pem",
        "keytool.log",
        "store.pass",
    ]
    props = (d / "server.properties").read_text()
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "super.users=User:broker;User:admin" in props


def test_a_user_without_acls_sees_and_makes_nothing(secured):
    user, password = secured.add_user("nobody")
    admin = AdminClient({**secured.client(user, password), "log_level": 0})
    assert admin.list_topics(timeout=10).topics == {}
    name = f"t-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_no_way_in_without_sasl_on_the_client_port(secured, protocol):
    """The listener drops a client that does not speak SASL_SSL without a reason, so the
    message names the security.protocol to check."""
    config = {
        "bootstrap.servers": secured.bootstrap,
        "security.protocol": protocol,
        "ssl.ca.location": secured.admin_config["ssl.ca.location"],
    }
    says = rf"cannot reach Kafka .* security.protocol \({protocol}\)"
    with pytest.raises(ConfigError, match=says):
        connect(config, timeout=3)


def test_the_brokers_own_listener_takes_only_its_certificate(secured):
    config = {
        "bootstrap.servers": f"127.0.0.1:{secured.ports['broker']}",
        "security.protocol": "SSL",
        "ssl.ca.location": secured.admin_config["ssl.ca.location"],
    }
    with pytest.raises(ConfigError, match="TLS handshake .* failed: .*bad certificate"):
        connect(config, timeout=30)  # refused at once: the bound is never reached
