"""Readiness probe for the local broker: create a topic, produce one record, read it back.

A broker that listens on its port may still be electing its controller or loading the
offsets topic; only a full round trip through a consumer group proves clients can work.
``--config FILE``: more librdkafka settings as JSON (the secured broker's ``client.json``: the
admin user, who may create the probe topic and use any group).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "_stream_od_ready"


def round_trip(bootstrap: str, deadline: float, config: dict | None = None) -> None:
    base = {**(config or {}), "bootstrap.servers": bootstrap}
    admin = AdminClient(base)
    while TOPIC not in admin.list_topics(timeout=5).topics:
        futures = admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
        try:
            futures[TOPIC].result(timeout=10)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    token = uuid.uuid4().hex.encode()
    producer = Producer({**base, "enable.idempotence": True, "log_level": 3})
    producer.produce(TOPIC, token)
    if producer.flush(max(1.0, deadline - time.monotonic())) != 0:
        raise TimeoutError("the probe record was not acknowledged")
    consumer = Consumer(
        {
            **base,
            "group.id": f"_stream_od_ready_{token.decode()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([TOPIC])
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value() == token:
                return
        raise TimeoutError("the probe record was not consumed back")
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--config", metavar="FILE", help="librdkafka settings (JSON object)")
    args = parser.parse_args()
    config = json.loads(open(args.config).read()) if args.config else None
    deadline = time.monotonic() + args.timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            round_trip(args.bootstrap, deadline, config)
            return 0
        except Exception as exc:  # the broker is still starting: retry until the deadline
            last = exc
            time.sleep(1.0)
    print(f"kafka: readiness probe failed: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
