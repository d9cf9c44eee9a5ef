"""Crash safety: kill -9 the worker mid-stream, restart it; a clean SIGTERM mid-stream too.

A read_committed reader of the outputs must see every input record exactly once: the output of
a batch and its input offsets commit in one transaction, and a restarted worker (same
instance_id, so the same transactional id) fences its dead predecessor and aborts what it left
open.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.integration.conftest import offline_scores
from tests.integration.test_worker_stream import by_seq
from tests.worker_support import WorkerProcess, metric_total, wait_consumed
from trainer.replay import Encoded, produce


@pytest.mark.parametrize("overlap", ["false", "true"])  # true: commits overlap (full batches)
def test_kill_nine_three_times_and_sigterm_lose_and_duplicate_nothing(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, read_topic, tmp_path, overlap
):
    artifact, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_OVERLAP_COMMITS": overlap,
        "STREAM_OD_MAX_BATCH_RECORDS": "100",
        "STREAM_OD_MAX_BATCH_WAIT_MS": "20",
        # A killed member holds its partitions until its session times out: keep that short.
        "STREAM_OD_CONSUMER": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
    }
    topic, group = env["STREAM_OD_INPUT_TOPIC"], env["STREAM_OD_GROUP_ID"]
    # A backlog keeps each worker busy committing batch after batch, so the kills land
    # mid-transaction rather than in an idle poll.
    produce(kdd_stream, topic=topic, bootstrap_servers=kafka_bootstrap)
    log = tmp_path / "worker.log"
    stops = ["kill", "kill", "kill", "term"]
    for how in stops:
        with WorkerProcess(env, log).start() as w:
            # Mid-stream: once this incarnation has committed some batches of its own.
            w.wait_for("stream_od_records_scored_total", 500, timeout=120)
            if how == "kill":
                w.kill()
            else:
                assert w.terminate() == 0, w.log()
    with WorkerProcess(env, log).start() as w:
        wait_consumed(kafka_bootstrap, group, topic, w, timeout=180)
        aborts = metric_total(w.metrics(), "stream_od_transaction_aborts_total")
        assert w.terminate() == 0, w.log()

    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))  # by_seq fails on a duplicate
    alerts = by_seq(read_topic(env["STREAM_OD_ALERTS_TOPIC"]))
    assert sorted(scores) == list(range(len(kdd_stream)))
    expected = offline_scores(artifact, kdd_stream.values)
    assert set(alerts) == set(np.flatnonzero(expected > artifact.threshold).tolist())
    assert read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"]) == []
    assert aborts == 0


def test_a_worker_restarted_after_kill_nine_gets_its_partitions_back_at_once(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, tmp_path
):
    """Static membership: the restarted worker rejoins under its old group.instance.id and the
    group hands its partitions straight back.  The dead member's session is set to 5 minutes,
    so without static membership the restarted worker would wait that long for them; the wait
    below gives up after 2."""
    _, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_CONSUMER": '{"session.timeout.ms": 300000}',
    }
    produce(kdd_stream, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap)
    log = tmp_path / "worker.log"
    with WorkerProcess(env, log).start() as w:
        w.wait_for("stream_od_records_scored_total", 500)
        w.kill()
    with WorkerProcess(env, log).start() as w:
        start = time.monotonic()
        w.wait_for("stream_od_assigned_partitions", 3, timeout=120)
        w.wait_for("stream_od_records_scored_total", 1)
        print(f"partitions served again {time.monotonic() - start:.1f} s after the restart")
        assert w.terminate() == 0, w.log()


def test_a_worker_restarted_on_another_input_topic_reads_that_topic(
    kafka_bootstrap, worker_topics, new_topic, mahalanobis_artifact, kdd_stream, tmp_path
):
    """An operator points a worker at a new topic and restarts it (same pod name, same
    instance id).  Under its old static member id the group handed it back its old topic's
    partitions and it never read the new one (KAFKA-12759); with the topic in the member id
    it joins as a new member and is given the new topic (after the old id's session, here
    10 s)."""
    _, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_CONSUMER": '{"session.timeout.ms": 10000}',
    }
    first = Encoded(values=kdd_stream.values[:300], labels=kdd_stream.labels[:300])
    produce(first, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap)
    log = tmp_path / "worker.log"
    with WorkerProcess(env, log).start() as w:
        w.wait_for("stream_od_records_scored_total", 1)
        assert w.terminate() == 0, w.log()
    moved = {**env, "STREAM_OD_INPUT_TOPIC": new_topic(partitions=3, prefix="moved")}
    produce(first, topic=moved["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap)
    with WorkerProcess(moved, tmp_path / "moved.log").start() as w:
        w.wait_settled(len(first), timeout=120)
        assert w.terminate() == 0, w.log()
    said = (tmp_path / "moved.log").read_text()
    assert f"assigned {moved['STREAM_OD_INPUT_TOPIC']} [0, 1, 2]" in said
    assert "not of its input topic" not in said
