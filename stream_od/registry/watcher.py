"""Find the newest trustworthy model in a registry, at start and then every few seconds.

A *source* (directory or topic) yields the versions published since it was last asked, in
publish order, as :class:`Candidate` objects; verifying one checks its signature and sums on
bytes read once (:mod:`stream_od.registry.verify`).  :class:`ModelWatcher` verifies each as it
arrives, refuses rollbacks, then builds the newest and hands it to ``accept`` (the worker's
``swap_model``, which swaps between batches), falling back to older new ones if it cannot be
served.  A refused version is logged with its reason, counted in
``stream_od_model_refusals_total{reason}``, and the worker keeps the model it has.

**Rollback protection.**  Versions are ordered by ``created_at``, read from the signed
``artifact.json`` (a publisher cannot change it without the private key).  A version is refused
with reason ``rollback`` when it is older than one the worker already serves, or than a
verified version published before it (so an old version published again at the end of the
models topic is refused at start too).  Same ``created_at``: not older.  An operator who
wants an older version sets ``model_pin_version``: the worker then serves that version and
ignores every other.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from stream_od.artifact import Artifact
from stream_od.errors import ArtifactError, StreamODError
from stream_od.kafka.messages import header_text, record_headers, record_offset
from stream_od.kafka.topics import BOOTSTRAP_SETTING
from stream_od.registry.directory import DirectoryRegistry
from stream_od.registry.errors import Refused, RegistryError
from stream_od.registry.loading import read_artifact
from stream_od.registry.pack import MAX_PACKED_BYTES
from stream_od.registry.signing import Trust, trust_from_settings
from stream_od.registry.topic import (
    DEFAULT_READER_GROUP,
    TopicReader,
    TopicRegistry,
    verify_message,
)
from stream_od.registry.verify import Verified, build, verify_files

log = logging.getLogger("stream_od.registry")

PIN_ENV = "STREAM_OD_MODEL_PIN_VERSION"
_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Candidate:
    """A published version, not yet trusted: ``version`` is what the registry claims (``LATEST``
    or the message header) and ``verify`` checks it under a :class:`Trust`."""

    version: str
    where: str
    order: int  # publish order within the source (the topic offset; 0 for a directory)
    verify: Callable[[Trust], Verified]


class Source(Protocol):
    trust: Trust | None  # set from the settings; None leaves it to the watcher's ``key``
    pin: str | None

    def poll(self) -> Iterable[Candidate]: ...

    def close(self) -> None: ...


class DirectorySource:
    """``LATEST`` of a :class:`DirectoryRegistry` each time it names another version, or only
    ``versions/<pin>`` when pinned."""

    def __init__(self, root, *, trust: Trust | None = None, pin: str | None = None):
        self.registry = DirectoryRegistry(root)
        self.trust, self.pin = trust, pin
        self._seen: str | None = None

    def __repr__(self) -> str:
        return repr(self.registry) + (f" (pinned to {self.pin})" if self.pin else "")

    def poll(self) -> list[Candidate]:
        name = self.pin or self.registry.latest()
        if name is None or name == self._seen:
            return []
        if self.pin and not (self.registry.versions / name).is_dir():
            return []  # not published yet: look again at the next poll
        self._seen = name
        return [Candidate(name, f"{self.registry.root}/versions/{name}", 0, self._verifier(name))]

    def _verifier(self, name: str) -> Callable[[Trust], Verified]:
        def verify(trust: Trust) -> Verified:
            try:
                path = self.registry.path_of(name)
            except RegistryError as exc:
                raise Refused("malformed", str(exc)) from None
            verified = verify_files(
                read_artifact(path, max_bytes=MAX_PACKED_BYTES), trust, f"versions/{name}"
            )
            if verified.version != name:
                raise Refused("integrity", f"versions/{name} holds version {verified.version}")
            return verified

        return verify

    def close(self) -> None:
        pass


class TopicSource:
    """Messages of the models topic, each once, in offset order, one at a time: a message is
    kept only until it is first verified and read again if it is ever needed later."""

    KEEP = 3  # TopicReader.fetch's bound, for callers that list entries

    def __init__(
        self,
        topic: str,
        client_config: dict[str, Any],
        *,
        trust: Trust | None = None,
        pin: str | None = None,
        group_id: str = DEFAULT_READER_GROUP,
    ):
        self.registry = TopicRegistry(
            topic, client_config, group_id=group_id, bootstrap_setting=BOOTSTRAP_SETTING
        )
        self.trust, self.pin = trust, pin
        self._reader: TopicReader | None = None

    def __repr__(self) -> str:
        return repr(self.registry) + (f" (pinned to {self.pin})" if self.pin else "")

    def poll(self) -> Iterator[Candidate]:
        if self._reader is None:
            self._reader = self.registry.reader()
        reader = self._reader
        for msg in reader.messages():
            version = header_text(record_headers(msg).get("version"), "?", errors="replace")
            offset = record_offset(msg)
            yield Candidate(
                version,
                f"{reader.topic}@{offset}",
                offset,
                _message_verifier(reader, msg),
            )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _message_verifier(reader: TopicReader, msg: Any) -> Callable[[Trust], Verified]:
    offset, held = msg.offset(), [msg]

    def verify(trust: Trust) -> Verified:
        # The first check uses the message in hand and drops it; a later one reads it again.
        return verify_message(held.pop() if held else reader.read_at(offset), trust)

    return verify


def source_from_settings(settings) -> Source | None:
    """The registry the settings name, with their trust and pin; None for ``model_source="path"``.
    Raises :class:`~stream_od.errors.ConfigError` for a key that cannot be read."""
    trust, pin = trust_from_settings(settings), getattr(settings, "model_pin_version", None)
    if settings.model_source == "directory":
        return DirectorySource(settings.model_registry_dir, trust=trust, pin=pin)
    if settings.model_source == "topic":
        return TopicSource(
            settings.model_topic,
            settings.client_config({}),
            trust=trust,
            pin=pin,
            group_id=model_reader_group_id(settings),
        )
    return None


def model_reader_group_id(settings) -> str:
    """The models reader's consumer group: ``model_reader_group_id``, else ``<group_id>.models``.
    Fixed, not random, so that one LITERAL ACL (DESCRIBE on the group) lets it read."""
    return getattr(settings, "model_reader_group_id", None) or f"{settings.group_id}.models"


def _age(verified: Verified) -> dt.datetime:
    return verified.created_at or _OLDEST


@dataclass
class _Newest:
    """The newest verified version so far: the floor later versions must not go below."""

    version: str
    created_at: dt.datetime


class ModelWatcher:
    """Polls ``source`` every ``interval_s`` seconds on a daemon thread.

    ``key``: a :class:`Trust`, an HMAC key (bytes), or None; a source built from the settings
    carries its own trust, and ``key`` must then agree with it.  ``pin``: serve only this
    version (defaults to the source's)."""

    def __init__(
        self,
        source: Source,
        *,
        key: Trust | bytes | None = None,
        metrics=None,
        accept: Callable[[Artifact], None],
        interval_s: float = 10.0,
        pin: str | None = None,
    ):
        self.source = source
        self.trust = _resolve_trust(getattr(source, "trust", None), key)
        self.pin = pin or getattr(source, "pin", None)
        self.metrics = metrics
        # Raises ValueError (its schema), ConfigError (this worker's settings), OSError or
        # another StreamODError when the worker cannot serve the model: each a refusal.
        self.accept = accept
        self.interval_s = interval_s
        self.current: str | None = None
        self._newest: _Newest | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> Artifact | None:
        """Check the versions published since the last poll, in publish order; hand the newest
        that passes every check to ``accept`` and return it, or return None."""
        best: tuple[Candidate, Verified] | None = None
        older: list[Candidate] = []  # passed too; verified again only if the newest cannot serve
        for cand in self.source.poll():
            verified = self._check(cand)
            if verified is not None:
                if best is not None:
                    older.append(best[0])
                best = (cand, verified)  # only the newest keeps its files in memory
        if best is None:
            return None
        for cand, verified in [best, *((c, None) for c in reversed(older))]:
            art = self._take(cand, verified)
            if art is not None:
                return art
        return None

    def _check(self, cand: Candidate) -> Verified | None:
        """The candidate verified and not a rollback, or None (refusals counted and logged)."""
        if self.pin is not None and cand.version != self.pin:
            log.info(
                "ignoring model %s from %s: pinned to %s (%s)",
                cand.version,
                cand.where,
                self.pin,
                PIN_ENV,
            )
            return None
        if cand.version == self.current:
            return None  # the version in use, published again
        try:
            verified = cand.verify(self.trust)
            if self.pin is None:
                self._check_rollback(verified)
        except Refused as exc:
            self._refuse(cand, exc)
            return None
        if self._newest is None or _age(verified) >= self._newest.created_at:
            self._newest = _Newest(verified.version, _age(verified))
        return verified

    def _check_rollback(self, verified: Verified) -> None:
        newest = self._newest
        if newest is None or _age(verified) >= newest.created_at:
            return
        when = verified.created_at.isoformat() if verified.created_at else "an unknown time"
        which = "the version in use" if newest.version == self.current else "published before it"
        raise Refused(
            "rollback",
            f"{verified.version} was created at {when}, before "
            f"{newest.version} ({newest.created_at.isoformat()}, {which}); "
            f"to serve it anyway, pin it: {PIN_ENV}={verified.version}",
        )

    def _take(self, cand: Candidate, verified: Verified | None) -> Artifact | None:
        """Build and accept one candidate; None (refusal counted) when it cannot be served.
        What ``accept`` raises is a refusal too, not an error for ``_run`` to retry: the source
        has moved past this version and never yields it again."""
        try:
            verified = verified or cand.verify(self.trust)
            art = build(verified)
            try:
                self.accept(art)
            except ValueError as exc:
                raise Refused(
                    "schema", f"{cand.version}: this worker cannot serve its schema: {exc}"
                ) from None
            except ArtifactError as exc:  # its content, found unusable while placing it
                raise Refused("malformed", f"{cand.version}: {exc}") from None
            except (OSError, StreamODError) as exc:  # this worker's settings or environment
                raise Refused(
                    "schema", f"{cand.version}: this worker cannot serve it: {exc}"
                ) from None
        except Refused as exc:
            self._refuse(cand, exc)
            return None
        self.current = art.version
        return art

    def _refuse(self, cand: Candidate, exc: Refused) -> None:
        if self.metrics is not None:
            self.metrics.model_refusals.labels(exc.reason).inc()
        log.error(
            "refused model %s from %s (reason=%s): %s; keeping model %s",
            cand.version,
            cand.where,
            exc.reason,
            exc,
            self.current or "(none yet)",
        )

    def start(self) -> ModelWatcher:
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                art = self.poll_once()
            except Exception as exc:
                log.warning(
                    "model registry %r: %s; keeping model %s and retrying in %.0f s",
                    self.source,
                    exc,
                    self.current,
                    self.interval_s,
                )
                continue
            if art is not None:
                log.info(
                    "model %s verified; the worker switches to it at the next batch", art.version
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.source.close()


def _resolve_trust(configured: Trust | None, key: Trust | bytes | None) -> Trust:
    """The source's trust (from the settings) or the watcher's ``key``; both given must agree,
    so that no caller can loosen what the settings require."""
    given = Trust.of(key)
    if configured is None:
        return given
    if key is not None and given != configured:
        raise ValueError(
            f"the watcher's key ({given.scheme}) and the source's trust "
            f"({configured.scheme}) differ: configure the keys in one place"
        )
    return configured
