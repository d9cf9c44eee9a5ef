"""Kafka calls that can block past their own timeout, and what the worker does about them.

librdkafka's transactional calls take a timeout, but after a broker outage some block past it:
a producer whose coordinator went away may never look it up again (librdkafka #5456, #5511),
and its call never returns.  Two guards, for two kinds of call:

* ``BoundedCaller`` runs a call whose abandonment is safe on a thread of its own and stops
  waiting for it at its timeout plus a grace, as if it had timed out.  ``send_offsets_to_
  transaction`` is one: the transaction has not been asked to commit, so the replacement
  producer's ``init_transactions`` fences the stuck one and has the broker abort what it left
  open, and the batch is read again.  The worker goes on without a restart.
* ``CallWatchdog`` ends the process when any other call outlives its timeout by a grace: a
  ``commit_transaction`` may already have committed on the broker, so the batch can be neither
  redone nor dropped without reading the group's offsets again, which a restart does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from stream_od.errors import EXIT_UNREACHABLE, FatalWorkerError

log = logging.getLogger(__name__)


class BoundedCaller:
    """Runs blocking client calls one at a time on a daemon thread and waits for each at most
    its timeout plus ``grace_s``; past that the call is abandoned and a retriable ``_TIMED_OUT``
    ``KafkaException`` is raised in its place, which the worker treats as the brokers being
    away (it replaces the producer and redoes the batch).

    An abandoned call keeps its thread (Python cannot interrupt it); the next call gets a fresh
    one.  Should ``max_stuck`` abandoned threads be still blocked at once, the client library is
    wedged beyond what replacing producers mends, and the worker stops with exit 4 so that a
    restart brings a fresh process.
    """

    def __init__(self, grace_s: float = 15.0, max_stuck: int = 3):
        self.grace_s = grace_s
        self.max_stuck = max_stuck
        self._server: tuple[queue.SimpleQueue, threading.Thread] | None = None  # inbox, thread
        self._stuck: list[threading.Thread] = []

    def call(self, what: str, fn: Callable[[], Any], timeout_s: float) -> Any:
        """``fn()`` (a client call that gives up after ``timeout_s``), its result or its
        exception; a ``_TIMED_OUT`` ``KafkaException`` when it blocks ``grace_s`` past that."""
        if self._server is None:
            self._server = _start()
        inbox, thread = self._server
        done: Future = Future()
        inbox.put((fn, done))
        try:
            return done.result(timeout=timeout_s + self.grace_s)
        except FutureTimeout:
            pass
        self._server = None
        inbox.put(None)  # should the call ever return, its thread ends there
        self._stuck = [t for t in self._stuck if t.is_alive()]
        self._stuck.append(thread)
        log.warning(
            "%s blocked %g s past its %g s timeout (a librdkafka producer that lost its "
            "coordinator); abandoning the call (%d such call(s) still blocked)",
            what,
            self.grace_s,
            timeout_s,
            len(self._stuck),
        )
        if len(self._stuck) >= self.max_stuck:
            raise FatalWorkerError(
                f"{len(self._stuck)} Kafka client calls are blocked past their timeouts at once "
                f"(the last: {what}); the client library is wedged, restarting the worker brings "
                "a fresh one. Nothing is lost: open transactions are aborted and their batches "
                "read again",
                exit_code=EXIT_UNREACHABLE,
            )
        raise KafkaException(
            KafkaError(
                KafkaError._TIMED_OUT,
                f"{what} blocked past its {timeout_s:g} s timeout and {self.grace_s:g} s of "
                "grace; abandoned",
                retriable=True,
            )
        )


def _start() -> tuple[queue.SimpleQueue, threading.Thread]:
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    thread = threading.Thread(target=_serve, args=(inbox,), name="kafka-bounded-call", daemon=True)
    thread.start()
    return inbox, thread


def _serve(inbox: queue.SimpleQueue) -> None:
    while (item := inbox.get()) is not None:
        fn, done = item
        try:
            done.set_result(fn())
        except BaseException as exc:  # handed to the caller, which decides
            done.set_exception(exc)


class CallWatchdog:
    """Ends the process when a blocking Kafka call outlives its own timeout by ``grace_s``.

    A worker blocked in such a call is alive, silent and scores nothing; exiting is safe under
    exactly-once (the open transaction is aborted by the broker, or completed if it was asked
    to commit, and the restarted worker reads from the group's committed offsets), and the
    orchestrator's restart brings a fresh producer.  The exit code is 4, as for an unreachable
    broker.
    """

    def __init__(self, grace_s: float = 60.0, exit=os._exit, watch: bool = True):
        self.grace_s = grace_s
        self._exit = exit
        self._watch_thread = watch  # False: only check() ends the process (tests)
        self._lock = threading.Lock()
        self._current: tuple[str, float, float] | None = None  # what, started, deadline
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def call(self, what: str, timeout_s: float) -> Iterator[None]:
        """Watch the ``with`` block: a Kafka call that gives up after ``timeout_s``."""
        self._arm(what, timeout_s)
        try:
            yield
        finally:
            with self._lock:
                self._current = None

    def _arm(self, what: str, timeout_s: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._current = (what, now, now + timeout_s + self.grace_s)
            if self._thread is None and self._watch_thread:
                self._thread = threading.Thread(
                    target=self._watch, name="kafka-call-watchdog", daemon=True
                )
                self._thread.start()

    def check(self, now: float | None = None) -> bool:
        """True when the call in flight is past its deadline (then the process is ended)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            current = self._current
        if current is None or now < current[2]:
            return False
        what, started, _ = current
        log.critical(
            "%s has blocked for %.0f s, past its own timeout and %g s of grace (a "
            "librdkafka producer that lost its coordinator); exiting so that a restart "
            "brings a fresh producer. Nothing is lost: the broker ends the open "
            "transaction and the restarted worker reads from the group's committed offsets.",
            what,
            now - started,
            self.grace_s,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(EXIT_UNREACHABLE)
        return True

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            self.check()
