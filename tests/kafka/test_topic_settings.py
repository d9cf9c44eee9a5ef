"""The output topics' settings as the worker reads them (pure logic; the real broker's side is
tests/integration/test_worker_topic_settings.py)."""

from __future__ import annotations

from stream_od.kafka import topic_settings as ts

WRITTEN = {"alerts_topic": "a", "dead_letter_topic": "d"}
DEFAULT = {"cleanup.policy": "delete", "max.message.bytes": "1048588"}


def test_default_topics_have_no_problem_and_keep_librdkafkas_batch_size():
    configs = {"a": DEFAULT, "d": DEFAULT}
    assert ts.problems(configs, WRITTEN, 900_000) == []
    assert ts.batch_size(configs, ["a", "d"], None) is None


def test_compaction_in_any_form_is_a_problem_naming_topic_and_setting():
    for policy in ("compact", "compact,delete", "delete,compact"):
        configs = {"a": DEFAULT, "d": {**DEFAULT, "cleanup.policy": policy}}
        (problem,) = ts.problems(configs, WRITTEN, 900_000)
        assert problem.startswith(
            f"topic 'd' (STREAM_OD_DEAD_LETTER_TOPIC) has cleanup.policy={policy}"
        )


def test_a_limit_below_what_the_worker_may_write_is_a_problem_with_the_size_to_set():
    configs = {"a": {**DEFAULT, "max.message.bytes": "916383"}, "d": DEFAULT}
    (problem,) = ts.problems(configs, WRITTEN, 900_000)
    assert "topic 'a' (STREAM_OD_ALERTS_TOPIC)" in problem and "at least 916384" in problem
    configs["a"]["max.message.bytes"] = "916384"
    assert ts.problems(configs, WRITTEN, 900_000) == []


def test_batches_are_sized_to_the_smallest_limit_below_the_batch_size_in_use():
    configs = {"a": {"max.message.bytes": "40000"}, "d": {"max.message.bytes": "60000"}}
    assert ts.batch_size(configs, ["a", "d"], None) == 40_000
    assert ts.batch_size(configs, ["a", "d"], 30_000) is None  # already below
    assert ts.batch_size(configs, ["d"], None) == 60_000


def test_a_stamp_window_only_where_create_time_has_limits():
    assert ts.StampWindow.of({"message.timestamp.type": "CreateTime"}) is None
    limited = {"message.timestamp.before.max.ms": "3600000"}
    assert ts.StampWindow.of({**limited, "message.timestamp.type": "LogAppendTime"}) is None
    assert ts.StampWindow.of(limited) == ts.StampWindow(3_600_000, ts.NO_LIMIT)
    legacy = {"message.timestamp.difference.max.ms": "1000", **limited}
    assert ts.StampWindow.of(legacy) == ts.StampWindow(1000, 1000)


def test_a_stamp_is_moved_inside_the_window_with_a_margin_and_kept_when_inside():
    window = ts.StampWindow(3_600_000, 600_000)
    now = 1_800_000_000_000
    assert window.clamp(now - 5_000, now) == now - 5_000
    assert window.clamp(now - 86_400_000, now) == now - 3_600_000 + ts.STAMP_MARGIN_MS
    assert window.clamp(now + 86_400_000, now) == now + 600_000 - ts.STAMP_MARGIN_MS
    small = ts.StampWindow(1_000, 1_000)  # the margin is at most half the window
    assert small.clamp(0, now) == now - 500
