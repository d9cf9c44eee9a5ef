"""``stream-od publish`` and ``train --publish-topic`` on the secured broker: WRITE on an existing
models topic is all a publisher needs (CREATE only to create it), and every failure is said at
once with its reason: permissions, credentials, TLS, an unreachable broker."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from confluent_kafka.admin import AclOperation, ConfigResource, ResourceType
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stream_od.cli import main
from stream_od.kafka.reader import read_to_end
from tests.integration.secured.cluster import topic_acl
from tests.worker_support import free_port

READ, WRITE, CREATE = AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE


@pytest.fixture
def publish(secured, mahalanobis_artifact, monkeypatch, capsys):
    """``publish(topic, user, password, bootstrap=...)`` -> ``(exit code, stderr)`` of
    ``stream-od publish`` as that user (its STREAM_OD_KAFKA)."""

    def run(
        topic: str, user: str, password: str, bootstrap: str | None = None, **kafka
    ) -> tuple[int, str]:
        config = {**secured.client(user, password), **kafka}
        config.pop("bootstrap.servers")
        monkeypatch.setenv("STREAM_OD_KAFKA", json.dumps(config))
        capsys.readouterr()
        code = main(
            [
                "publish",
                "--artifact",
                str(mahalanobis_artifact[1]),
                "--topic",
                topic,
                "--bootstrap-servers",
                bootstrap or secured.bootstrap,
            ]
        )
        return code, capsys.readouterr().err

    return run


def models_topic(secured) -> str:
    return secured.create_topic(
        "models", config={"cleanup.policy": "compact", "max.message.bytes": str(8 << 20)}
    )


def test_write_on_an_existing_topic_is_enough(secured, publish, mahalanobis_artifact):
    topic = models_topic(secured)
    user, password = secured.add_user("publisher")
    secured.grant([topic_acl(user, topic, WRITE)])
    code, err = publish(topic, user, password)
    assert code == 0, err
    [msg] = read_to_end(secured.bootstrap, topic, config=secured.client())
    assert msg.key().decode() == mahalanobis_artifact[0].version


def test_create_lets_publish_make_a_compacted_topic(secured, publish):
    topic = f"models-{uuid.uuid4().hex[:10]}"
    user, password = secured.add_user("publisher")
    secured.grant([topic_acl(user, topic, WRITE), topic_acl(user, topic, CREATE)])
    code, err = publish(topic, user, password)
    assert code == 0, err
    resource = ConfigResource(ResourceType.TOPIC, topic)
    config = secured.admin.describe_configs([resource])[resource].result(30)
    assert config["cleanup.policy"].value == "compact"
    assert len(read_to_end(secured.bootstrap, topic, config=secured.client())) == 1


@pytest.mark.parametrize(
    "exists, granted, says",
    [
        (True, [READ], "may not WRITE topic"),
        (True, [], "is not authorized on models topic"),
        (False, [WRITE], "does not exist and User:{user} may not create it"),
    ],
)
def test_what_is_missing_is_named(secured, publish, exists, granted, says):
    topic = models_topic(secured) if exists else f"models-{uuid.uuid4().hex[:10]}"
    user, password = secured.add_user("publisher")
    secured.grant([topic_acl(user, topic, op) for op in granted])
    code, err = publish(topic, user, password)
    assert code == 1 and says.format(user=user) in err and repr(topic) in err, err
    assert f"grant {'CREATE' if not exists else 'WRITE'} on Topic:{topic}" in err, err
    if exists:
        assert read_to_end(secured.bootstrap, topic, config=secured.client()) == []


def test_a_wrong_password_is_said_with_librdkafkas_reason(secured, publish):
    user, password = secured.add_user("publisher")
    code, err = publish(models_topic(secured), user, "not-" + password)
    assert code == 1 and "authentication failed" in err and "invalid credentials" in err, err


def test_a_wrong_ca_is_a_tls_error(secured, publish, tmp_path):
    user, password = secured.add_user("publisher")
    code, err = publish(
        models_topic(secured),
        user,
        password,
        **{"ssl.ca.location": str(other_ca(tmp_path / "other-ca.pem"))},
    )
    assert code == 1 and "TLS handshake" in err and "certificate verify failed" in err, err
    assert "ssl.ca.location" in err, err


def test_an_unreachable_broker_is_named(secured, publish):
    user, password = secured.add_user("publisher")
    code, err = publish("stream-od.models", user, password, bootstrap=f"127.0.0.1:{free_port()}")
    assert code == 1 and "cannot reach Kafka" in err and "--bootstrap-servers" in err, err


def test_train_checks_its_publish_topic_before_training(
    secured, monkeypatch, capsys, kdd_train_path, tmp_path
):
    user, password = secured.add_user("trainer")
    topic = models_topic(secured)  # no ACL for this user: publishing would fail after training
    monkeypatch.setenv("STREAM_OD_KAFKA", secured.kafka_env(user, password))
    out = tmp_path / "artifact"
    code = main(
        [
            "train",
            "--data",
            str(kdd_train_path),
            "--detector",
            "mahalanobis",
            "--n-train",
            "2000",
            "--quiet",
            "--out",
            str(out),
            "--publish-topic",
            topic,
            "--bootstrap-servers",
            secured.bootstrap,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"is not authorized on models topic {topic!r}" in err, err
    assert not out.exists()  # nothing was trained


def other_ca(path):
    """A CA certificate that did not sign the broker's certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some other CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
