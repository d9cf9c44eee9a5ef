"""BoundedCaller: a client call's result and errors come through as they are; a call that
blocks past its timeout and grace is abandoned as a retriable timeout (pure logic)."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from stream_od.errors import EXIT_UNREACHABLE, FatalWorkerError
from stream_od.kafka.blocking import BoundedCaller


def test_a_call_that_returns_gives_its_result_and_its_errors_on_the_same_thread_each_time():
    caller = BoundedCaller(grace_s=5.0)
    threads = {caller.call("a", lambda: threading.current_thread(), 1.0) for _ in range(3)}
    assert len(threads) == 1 and threading.current_thread() not in threads
    refused = KafkaException(KafkaError(KafkaError._STATE, "no"))
    with pytest.raises(KafkaException) as info:
        caller.call("b", lambda: (_ for _ in ()).throw(refused), 1.0)
    assert info.value is refused


def test_a_call_blocked_past_its_timeout_and_grace_is_abandoned_as_a_retriable_timeout():
    caller = BoundedCaller(grace_s=0.1, max_stuck=3)
    release = threading.Event()
    try:
        with pytest.raises(KafkaException) as info:
            caller.call("send_offsets_to_transaction", release.wait, 0.0)
        err = info.value.args[0]
        assert err.code() == KafkaError._TIMED_OUT and err.retriable()
        assert "send_offsets_to_transaction" in err.str()
        # the next call runs on a fresh thread, not behind the stuck one
        assert caller.call("next", lambda: 7, 1.0) == 7
    finally:
        release.set()


def test_too_many_calls_blocked_at_once_stop_the_worker_with_exit_4():
    caller = BoundedCaller(grace_s=0.05, max_stuck=2)
    release = threading.Event()
    try:
        with pytest.raises(KafkaException):
            caller.call("first", release.wait, 0.0)
        with pytest.raises(FatalWorkerError) as info:
            caller.call("second", release.wait, 0.0)
        assert info.value.exit_code == EXIT_UNREACHABLE and "second" in str(info.value)
    finally:
        release.set()


def test_an_abandoned_call_that_returns_late_no_longer_counts_as_stuck():
    caller = BoundedCaller(grace_s=0.05, max_stuck=2)
    first = threading.Event()
    with pytest.raises(KafkaException):
        caller.call("first", first.wait, 0.0)
    first.set()  # it returns after all: its thread ends
    stuck = caller._stuck[0]
    stuck.join(5.0)
    assert not stuck.is_alive()
    second = threading.Event()
    try:
        with pytest.raises(KafkaException):  # one stuck, not two: no exit
            caller.call("second", second.wait, 0.0)
    finally:
        second.set()
