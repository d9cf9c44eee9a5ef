"""The topic registry on the real broker."""

import hashlib

import pytest
from confluent_kafka import Producer

from stream_od.metrics import WorkerMetrics
from stream_od.registry import RegistryError, signing
from stream_od.registry.pack import pack
from stream_od.registry.topic import MAX_PACKED_BYTES, TopicRegistry
from stream_od.registry.watcher import ModelWatcher, TopicSource
from tests.registry.conftest import KEY, created
from tests.registry.test_hostile_archives import LIMIT, MiB, gnu_sparse, peak_extra_bytes


@pytest.fixture
def models_topic(new_topic):
    return new_topic(
        config={"cleanup.policy": "compact", "max.message.bytes": str(8 << 20)}, prefix="models"
    )


def watcher_on(topic, bootstrap, metrics, key=KEY):
    return ModelWatcher(
        TopicSource(topic, {"bootstrap.servers": bootstrap}),
        key=key,
        metrics=metrics,
        accept=lambda art: None,
    )


def raw_produce(bootstrap, topic, key, value, headers):
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 8 << 20})
    p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0


def test_publish_one_message_per_version_with_headers(
    kafka_bootstrap, models_topic, read_topic, make_artifact
):
    reg = TopicRegistry(models_topic, {"bootstrap.servers": kafka_bootstrap})
    src = make_artifact(1)
    signing.sign(src, KEY)
    assert reg.publish(src) == ("v1-1", 0)
    [msg] = read_topic(models_topic)
    headers = dict(msg.headers())
    assert msg.key() == b"v1-1" and headers["version"] == b"v1-1"
    assert headers["sha256"].decode() == hashlib.sha256(msg.value()).hexdigest()
    assert msg.value() == pack(src) and len(msg.value()) < MAX_PACKED_BYTES


def test_latest_is_the_highest_offset_that_verifies(kafka_bootstrap, models_topic, make_artifact):
    reg = TopicRegistry(models_topic, {"bootstrap.servers": kafka_bootstrap})
    for seed in (1, 2):
        src = make_artifact(seed)
        signing.sign(src, KEY)
        reg.publish(src)
    # v3: one byte of the packed artifact changed after its sha256 header was computed.
    src = make_artifact(3)
    signing.sign(src, KEY)
    value = bytearray(pack(src))
    good_sum = hashlib.sha256(value).hexdigest().encode()
    value[len(value) // 2] ^= 0x01
    raw_produce(
        kafka_bootstrap,
        models_topic,
        b"v3-3",
        bytes(value),
        [("version", b"v3-3"), ("sha256", good_sum)],
    )
    # v4: consistent message and sums, but not signed.
    src = make_artifact(4)
    reg.publish(src)

    metrics = WorkerMetrics()
    watcher = watcher_on(models_topic, kafka_bootstrap, metrics)
    try:
        assert watcher.poll_once().version == "v2-2"
        assert metrics.model_refusals.labels("unsigned")._value.get() == 1
        assert metrics.model_refusals.labels("integrity")._value.get() == 1
        assert watcher.poll_once() is None
        src = make_artifact(5)
        signing.sign(src, KEY)
        reg.publish(src)
        assert watcher.poll_once().version == "v5-5"
    finally:
        watcher.source.close()


def test_start_falls_back_past_the_messages_kept_in_memory(
    kafka_bootstrap, models_topic, make_artifact
):
    reg = TopicRegistry(models_topic, {"bootstrap.servers": kafka_bootstrap})
    src = make_artifact(1)
    signing.sign(src, KEY)
    reg.publish(src)  # v1-1: the only trustworthy version
    for seed in (2, 3, 4, 5):  # four unsigned ones after it
        reg.publish(make_artifact(seed))
    reader = reg.reader()
    try:
        entries = reader.fetch(keep=TopicSource.KEEP)
        assert [e.version for e in entries] == ["v1-1", "v2-2", "v3-3", "v4-4", "v5-5"]
        assert [e.message is None for e in entries] == [True, True, False, False, False]
        assert reader.read_at(entries[0].offset).key() == b"v1-1"
    finally:
        reader.close()
    metrics = WorkerMetrics()
    watcher = watcher_on(models_topic, kafka_bootstrap, metrics)
    try:
        assert watcher.poll_once().version == "v1-1"  # re-read from offset 0 after 4 refusals
        assert metrics.model_refusals.labels("unsigned")._value.get() == 4
    finally:
        watcher.source.close()


def test_a_message_whose_manifest_lies_about_its_version_is_refused(
    kafka_bootstrap, models_topic, make_artifact
):
    src = make_artifact(1)
    value = pack(src)
    raw_produce(
        kafka_bootstrap,
        models_topic,
        b"v9",
        value,
        [("version", b"v9"), ("sha256", hashlib.sha256(value).hexdigest().encode())],
    )
    metrics = WorkerMetrics()
    watcher = watcher_on(models_topic, kafka_bootstrap, metrics, key=None)
    try:
        assert watcher.poll_once() is None
        assert metrics.model_refusals.labels("integrity")._value.get() == 1
    finally:
        watcher.source.close()


def test_a_models_topic_needs_one_partition(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=2, prefix="models")
    with pytest.raises(RegistryError, match="exactly one"):
        TopicRegistry(topic, {"bootstrap.servers": kafka_bootstrap}).ensure_topic()


def test_an_old_version_published_again_is_refused_at_start_unless_pinned(
    kafka_bootstrap, models_topic, make_artifact, private_key, trust
):
    reg = TopicRegistry(models_topic, {"bootstrap.servers": kafka_bootstrap})
    paths = {}
    for seed, day in ((1, 1), (2, 2)):
        paths[seed] = make_artifact(seed, created_at=created(day))
        signing.sign_ed25519(paths[seed], private_key)
        reg.publish(paths[seed])
    reg.publish(paths[1])  # v1-1 again, at the highest offset: the old way to roll back
    metrics = WorkerMetrics()
    watcher = ModelWatcher(
        TopicSource(models_topic, {"bootstrap.servers": kafka_bootstrap}),
        key=trust,
        metrics=metrics,
        accept=lambda art: None,
    )
    try:
        assert watcher.poll_once().version == "v2-2"
        assert metrics.model_refusals.labels("rollback")._value.get() == 1
    finally:
        watcher.source.close()
    pinned = ModelWatcher(
        TopicSource(models_topic, {"bootstrap.servers": kafka_bootstrap}, pin="v1-1"),
        key=trust,
        accept=lambda art: None,
    )
    try:
        assert pinned.poll_once().version == "v1-1"
    finally:
        pinned.source.close()


def test_a_sparse_member_on_the_topic_is_refused_in_bounded_memory(
    kafka_bootstrap, models_topic, trust
):
    value = gnu_sparse(256 * MiB)
    raw_produce(
        kafka_bootstrap,
        models_topic,
        b"v1",
        value,
        [("version", b"v1"), ("sha256", hashlib.sha256(value).hexdigest().encode())],
    )
    metrics = WorkerMetrics()
    watcher = ModelWatcher(
        TopicSource(models_topic, {"bootstrap.servers": kafka_bootstrap}),
        key=trust,
        metrics=metrics,
        accept=lambda art: None,
    )
    try:
        peak, raised = peak_extra_bytes(watcher.poll_once)
    finally:
        watcher.source.close()
    assert raised is None and watcher.current is None
    assert metrics.model_refusals.labels("malformed")._value.get() == 1
    print(f"sparse member on the topic: refused, peak {peak:,} bytes")
    assert peak < LIMIT, f"{peak:,} bytes"
