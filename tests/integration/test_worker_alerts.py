"""SIEM alerts from a real worker on the real broker: ids that a replay or a crash does not
change, and suppression that neither loses nor repeats a summary under kill -9.

Zeek records, keyed by originator (as a deployment that suppresses per originator keys its
topic, so each host's alerts meet in one partition), scored by a Zeek Mahalanobis model, ECS
output, suppression per originator over 10 minutes of event time.  After the stream, one record
a day later on each partition moves every partition's event time past every window, so all
summaries are out and the counts can be checked against offline scoring.
"""

from __future__ import annotations

import orjson
from confluent_kafka import Producer

from tests.kafka_support import unique_name
from tests.worker_support import WorkerProcess, metric_total, metric_values, wait_consumed
from trainer.replay import log_stream, produce
from trainer.score import score_values

WINDOW_S = 600


def clock_records(stream) -> list[bytes]:
    """One ordinary-looking record per partition, a day after the stream's last."""
    last = max(orjson.loads(v)["ts"] for v in stream.values)
    template = {
        k: v
        for k, v in orjson.loads(stream.values[0]).items()
        if k not in ("label", "detailed-label", "detailedlabel")
    }
    return [
        orjson.dumps({**template, "ts": last + 86_400 + p, "uid": f"clock-{p}"}) for p in range(3)
    ]


def send_clocks(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for p, value in enumerate(values):
        producer.produce(topic, value=value, key=f"clock-{p}".encode(), partition=p)
    assert producer.flush(30) == 0


def run_worker(env: dict, log, *, kills: int, bootstrap: str) -> str:
    """Consume the whole input, killing the worker ``kills`` times mid-stream; the last
    incarnation's metrics text."""
    for _ in range(kills):
        with WorkerProcess(env, log).start() as w:
            w.wait_for("stream_od_records_scored_total", 300, timeout=120)
            w.kill()
    with WorkerProcess(env, log).start() as w:
        wait_consumed(
            bootstrap, env["STREAM_OD_GROUP_ID"], env["STREAM_OD_INPUT_TOPIC"], w, timeout=180
        )
        text = w.metrics()
        assert w.terminate() == 0, w.log()
    return text


def alerts_of(messages) -> tuple[list[dict], list[dict]]:
    docs = [orjson.loads(m.value()) for m in messages]
    ids = [d["event"]["id"] for d in docs]
    assert len(ids) == len(set(ids)), "an alert id appears twice"
    for m, d in zip(messages, docs):
        headers = dict(m.headers())
        assert headers["stream_od.format"] == b"ecs"
        assert headers["stream_od.severity"].decode() == d["stream_od"]["severity"]
    summaries = [d for d in docs if "summary" in d["stream_od"]]
    return [d for d in docs if "summary" not in d["stream_od"]], summaries


def test_suppressed_ecs_alerts_survive_kill_nine_and_a_replay_unchanged(
    kafka_bootstrap,
    worker_topics,
    new_topic,
    zeek_mahalanobis_artifact,
    zeek_replay_path,
    read_topic,
    tmp_path,
):
    artifact, path = zeek_mahalanobis_artifact
    stream = log_stream([zeek_replay_path], schema="zeek-conn")
    topic = worker_topics["STREAM_OD_INPUT_TOPIC"]
    produce(
        stream,
        topic=topic,
        bootstrap_servers=kafka_bootstrap,
        key_field="id.orig_h",
    )
    clocks = clock_records(stream)
    send_clocks(kafka_bootstrap, topic, clocks)
    over = sum(
        r["score"] > artifact.threshold for r in score_values(artifact, [*stream.values, *clocks])
    )

    base = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_RECORDS": "100",
        "STREAM_OD_ALERT_FORMAT": "ecs",
        "STREAM_OD_SUPPRESS_WINDOW_S": str(WINDOW_S),
        "STREAM_OD_SUPPRESS_BY": '["source_ip"]',
        "STREAM_OD_CONSUMER": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
    }
    runs = {}
    for name, kills in (("crashed", 2), ("straight", 0)):
        env = {
            **base,
            "STREAM_OD_GROUP_ID": unique_name(f"group-{name}"),
            "STREAM_OD_ALERTS_TOPIC": new_topic(prefix=f"alerts-{name}"),
            "STREAM_OD_SUPPRESSION_CHANGELOG_TOPIC": unique_name(f"suppress-{name}"),
        }
        text = run_worker(env, tmp_path / f"{name}.log", kills=kills, bootstrap=kafka_bootstrap)
        alerts, summaries = alerts_of(read_topic(env["STREAM_OD_ALERTS_TOPIC"]))
        held = sum(s["stream_od"]["summary"]["count"] for s in summaries)
        # Every record over the threshold is an emitted alert or counted in a summary.
        assert len(alerts) + held == over, (name, len(alerts), held, over)
        runs[name] = (alerts, summaries, text)

    (a1, s1, _), (a2, s2, text) = runs["crashed"], runs["straight"]
    assert sorted(a["event"]["id"] for a in a1) == sorted(a["event"]["id"] for a in a2)
    assert sorted((s["event"]["id"], s["stream_od"]["summary"]["count"]) for s in s1) == sorted(
        (s["event"]["id"], s["stream_od"]["summary"]["count"]) for s in s2
    )
    held = sum(s["stream_od"]["summary"]["count"] for s in s2)
    assert metric_total(text, "stream_od_alerts_suppressed_total") == held
    assert metric_total(text, "stream_od_alert_summaries_total") == len(s2)
    # each worker read its partitions' suppression state back once, at its assignment
    restores = metric_values(runs["crashed"][2], "stream_od_state_restore_seconds_count")
    assert set(restores) == {'{state="suppression"}'} and restores['{state="suppression"}'] >= 1
    assert s2 and len(a2) < over  # (the bound for one scanning host: tests/alerts)
    print(
        f"{over} records over the threshold -> {len(a2)} alerts + {len(s2)} summaries "
        f"({held} held back)"
    )
