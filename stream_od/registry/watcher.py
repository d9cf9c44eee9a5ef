"""Find the newest trustworthy model in a registry, at start and then every few seconds.

A *source* (directory or topic) returns the versions published since it was last asked, oldest
first, as :class:`Candidate` objects; loading one verifies it
(:func:`~stream_od.registry.verify.load_verified`).  :class:`ModelWatcher` tries the newest
first and falls back to older new ones; the first that loads and that the worker can serve is
handed to ``accept`` (the worker's ``swap_model``, which swaps between batches).  A refused
version is logged with its reason, counted in ``stream_od_model_refusals_total{reason}``, and
the worker keeps the model it has.
"""

from __future__ import annotations

import logging
import pathlib
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from stream_od.artifact import Artifact
from stream_od.registry.directory import DirectoryRegistry
from stream_od.registry.errors import Refused, RegistryError
from stream_od.registry.pack import unpack
from stream_od.registry.topic import TopicReader, TopicRegistry, check_message
from stream_od.registry.verify import load_verified

log = logging.getLogger("stream_od.registry")


@dataclass(frozen=True)
class Candidate:
    version: str
    where: str
    load: Callable[[bytes | None], Artifact]  # key -> artifact, or Refused


class Source(Protocol):
    def poll(self) -> list[Candidate]: ...

    def close(self) -> None: ...


class DirectorySource:
    """``LATEST`` of a :class:`DirectoryRegistry`, each time it names another version."""

    def __init__(self, root):
        self.registry = DirectoryRegistry(root)
        self._seen: str | None = None

    def __repr__(self) -> str:
        return repr(self.registry)

    def poll(self) -> list[Candidate]:
        name = self.registry.latest()
        if name is None or name == self._seen:
            return []
        self._seen = name

        def load(key: bytes | None) -> Artifact:
            try:
                path = self.registry.path_of(name)
            except RegistryError as exc:
                raise Refused("malformed", str(exc)) from None
            art = load_verified(path, key)
            if art.version != name:
                raise Refused("integrity", f"versions/{name} holds version {art.version}")
            return art

        return [Candidate(name, f"{self.registry.root}/versions/{name}", load)]

    def close(self) -> None:
        pass


class TopicSource:
    """Messages of the models topic, each once, in offset order."""

    KEEP = 3  # messages held in memory at start (4 MiB each); older ones are re-read if needed

    def __init__(self, topic: str, client_config: dict[str, Any]):
        self.registry = TopicRegistry(topic, client_config)
        self._reader: TopicReader | None = None

    def __repr__(self) -> str:
        return repr(self.registry)

    def poll(self) -> list[Candidate]:
        if self._reader is None:
            self._reader = self.registry.reader()
        reader = self._reader
        out = []
        for entry in reader.fetch(keep=self.KEEP):
            where = f"{reader.topic}@{entry.offset}"
            if entry.message is not None:
                get = (lambda msg=entry.message: msg)
            else:  # dropped at start to bound memory: read again only if tried
                get = (lambda offset=entry.offset: reader.read_at(offset))
            out.append(Candidate(entry.version, where, _message_loader(get, where)))
        return out

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _message_loader(get_message: Callable[[], Any], where: str) -> Callable[[bytes | None], Artifact]:
    def load(key: bytes | None) -> Artifact:
        published = check_message(get_message())
        with tempfile.TemporaryDirectory(prefix="stream-od-model-") as tmp:
            root = unpack(published.value, pathlib.Path(tmp) / published.version)
            art = load_verified(root, key)
        if art.version != published.version:
            raise Refused("integrity", f"{where}: header says {published.version}, the manifest "
                                       f"{art.version}")
        return art
    return load


def source_from_settings(settings) -> Source | None:
    """The registry the settings name, or None for ``model_source="path"``."""
    if settings.model_source == "directory":
        return DirectorySource(settings.model_registry_dir)
    if settings.model_source == "topic":
        return TopicSource(settings.model_topic, settings.client_config({}))
    return None


class ModelWatcher:
    """Polls ``source`` every ``interval_s`` seconds on a daemon thread."""

    def __init__(self, source: Source, *, key: bytes | None, metrics=None,
                 accept: Callable[[Artifact], None], interval_s: float = 10.0):
        self.source = source
        self.key = key
        self.metrics = metrics
        self.accept = accept  # raises ValueError when the worker cannot serve the model
        self.interval_s = interval_s
        self.current: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> Artifact | None:
        """Try the versions published since the last poll, newest first; returns the one
        handed to ``accept``, or None."""
        for cand in reversed(self.source.poll()):
            if cand.version == self.current:
                return None  # already serving it: nothing newer in this poll
            try:
                art = cand.load(self.key)
                try:
                    self.accept(art)
                except ValueError as exc:
                    raise Refused("schema", f"{cand.version}: this worker cannot serve its "
                                            f"schema: {exc}") from None
            except Refused as exc:
                self._refuse(cand, exc)
                continue
            self.current = art.version
            return art
        return None

    def _refuse(self, cand: Candidate, exc: Refused) -> None:
        if self.metrics is not None:
            self.metrics.model_refusals.labels(exc.reason).inc()
        log.error("refused model %s from %s (reason=%s): %s; keeping model %s",
                  cand.version, cand.where, exc.reason, exc, self.current or "(none yet)")

    def start(self) -> "ModelWatcher":
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                art = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a registry hiccup must not stop scoring
                log.warning("model registry %r: %s; keeping model %s and retrying in %.0f s",
                            self.source, exc, self.current, self.interval_s)
                continue
            if art is not None:
                log.info("model %s verified; the worker switches to it at the next batch",
                         art.version)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.source.close()
