"""Rollback protection: a version older (signed ``created_at``) than the one served, or than a
verified version published before it, is refused unless an operator pins it."""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib

import pytest

from stream_od.errors import ConfigError
from stream_od.metrics import WorkerMetrics
from stream_od.registry import signing
from stream_od.registry.directory import DirectoryRegistry
from stream_od.registry.loading import read_artifact
from stream_od.registry.verify import verify_files
from stream_od.registry.watcher import Candidate, DirectorySource, ModelWatcher
from tests.registry.conftest import created


class ListSource:
    """A registry in memory: what was published since the last poll, in publish order."""

    trust = None
    pin = None

    def __init__(self):
        self.pending: list[Candidate] = []
        self.published = 0

    def publish(self, path: pathlib.Path, version: str | None = None) -> None:
        version = version or json.loads((path / "manifest.json").read_text())["version"]
        self.pending.append(
            Candidate(
                version,
                f"list@{self.published}",
                self.published,
                lambda trust: verify_files(read_artifact(path), trust, path.name),
            )
        )
        self.published += 1

    def poll(self) -> list[Candidate]:
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        pass


def refusals(metrics: WorkerMetrics) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for m in metrics.registry.collect()
        if m.name == "stream_od_model_refusals"
        for s in m.samples
        if s.name.endswith("_total")
    }


def signed(make_artifact, private_key, day: int | None, seed: int = 0, **kw) -> pathlib.Path:
    path = make_artifact(seed, created_at=created(day) if day else None, **kw)
    signing.sign_ed25519(path, private_key)
    return path


def test_an_older_version_is_refused_unless_pinned(
    make_artifact, private_key, trust, tmp_path, caplog
):
    reg = DirectoryRegistry(tmp_path / "reg")
    new = reg.publish(signed(make_artifact, private_key, day=2, seed=1))
    metrics = WorkerMetrics()
    watcher = ModelWatcher(
        DirectorySource(tmp_path / "reg"), key=trust, metrics=metrics, accept=lambda art: None
    )
    assert watcher.poll_once().version == new
    # LATEST pointed at an older signed version: a rollback, refused and counted.
    old = reg.publish(signed(make_artifact, private_key, day=1, seed=2))
    with caplog.at_level(logging.ERROR, "stream_od.registry"):
        assert watcher.poll_once() is None
    assert watcher.current == new and refusals(metrics) == {"rollback": 1}
    assert f"refused model {old}" in caplog.text and "reason=rollback" in caplog.text
    assert f"STREAM_OD_MODEL_PIN_VERSION={old}" in caplog.text
    # A worker (re)started with the old version pinned serves it, and only it.
    pinned = ModelWatcher(
        DirectorySource(tmp_path / "reg", pin=old),
        key=trust,
        metrics=metrics,
        accept=lambda art: None,
    )
    assert pinned.poll_once().version == old
    newer = reg.publish(signed(make_artifact, private_key, day=3, seed=3))
    assert pinned.poll_once() is None and pinned.current == old
    assert refusals(metrics) == {"rollback": 1}  # ignoring while pinned is not a refusal
    # Unpinned, the newer one is taken.
    assert watcher.poll_once().version == newer


def test_a_pin_waits_for_its_version_and_ignores_latest(
    make_artifact, private_key, trust, tmp_path
):
    reg = DirectoryRegistry(tmp_path / "reg")
    reg.publish(signed(make_artifact, private_key, day=2, seed=1))
    watcher = ModelWatcher(
        DirectorySource(tmp_path / "reg", pin="v5-2"), key=trust, accept=lambda art: None
    )
    assert watcher.pin == "v5-2" and watcher.poll_once() is None  # not published yet
    reg.publish(signed(make_artifact, private_key, day=1, seed=5))
    reg.publish(signed(make_artifact, private_key, day=3, seed=6))  # LATEST: v6-3
    assert watcher.poll_once().version == "v5-2"


def test_at_start_the_newest_wins_and_an_old_version_published_again_is_a_rollback(
    make_artifact, private_key, trust
):
    source = ListSource()
    v1 = signed(make_artifact, private_key, day=1, seed=1)
    v2 = signed(make_artifact, private_key, day=2, seed=2)
    v3 = signed(make_artifact, private_key, day=3, seed=3)
    for path in (v1, v2, v3, v1):  # v1 published again after v3
        source.publish(path)
    metrics = WorkerMetrics()
    watcher = ModelWatcher(source, key=trust, metrics=metrics, accept=lambda art: None)
    assert watcher.poll_once().version == "v3-3"
    # v1 and v2 are history, not refusals; v1 published again after v3 is a rollback.
    assert refusals(metrics) == {"rollback": 1}
    # Later: the same created_at is not older; an earlier one is.
    source.publish(signed(make_artifact, private_key, day=3, seed=4))
    assert watcher.poll_once().version == "v4-4"
    source.publish(v2)
    assert watcher.poll_once() is None and refusals(metrics) == {"rollback": 2}


def test_when_the_newest_cannot_be_served_an_older_one_published_before_it_is(
    make_artifact, private_key, trust
):
    source = ListSource()
    source.publish(signed(make_artifact, private_key, day=1, seed=1))
    source.publish(signed(make_artifact, private_key, day=2, seed=2, names=("x", "y")))

    def accept(art):
        if art.feature_names != ("a", "b", "c"):
            raise ValueError("not in the input")

    metrics = WorkerMetrics()
    watcher = ModelWatcher(source, key=trust, metrics=metrics, accept=accept)
    assert watcher.poll_once().version == "v1-1"
    assert refusals(metrics) == {"schema": 1}


def test_when_the_newest_cannot_be_placed_an_older_one_published_before_it_is(
    make_artifact, private_key, trust
):
    """A ConfigError from ``accept`` (``scoring_device=gpu`` on a worker without a GPU) is a
    refusal like a ValueError: the fallback runs, and a later version is still taken."""
    source = ListSource()
    source.publish(signed(make_artifact, private_key, day=1, seed=1))
    source.publish(signed(make_artifact, private_key, day=2, seed=2))

    def accept(art):
        if art.version == "v2-2":
            raise ConfigError("scoring_device=gpu, but Keras' backend (tensorflow) sees no GPU")

    metrics = WorkerMetrics()
    watcher = ModelWatcher(source, key=trust, metrics=metrics, accept=accept)
    assert watcher.poll_once().version == "v1-1"
    assert refusals(metrics) == {"schema": 1}
    source.publish(signed(make_artifact, private_key, day=3, seed=3))
    assert watcher.poll_once().version == "v3-3" and refusals(metrics) == {"schema": 1}


def without_created_at(path: pathlib.Path) -> pathlib.Path:
    """The artifact with ``created_at`` removed from artifact.json (sums updated)."""
    info = json.loads((path / "artifact.json").read_text())
    del info["created_at"]
    (path / "artifact.json").write_text(json.dumps(info))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["artifact.json"] = hashlib.sha256(
        (path / "artifact.json").read_bytes()
    ).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_a_version_without_created_at_ranks_oldest(make_artifact, private_key, trust):
    source = ListSource()
    source.publish(signed(make_artifact, private_key, day=1, seed=1))
    undated = without_created_at(make_artifact(2))
    signing.sign_ed25519(undated, private_key)
    source.publish(undated)
    metrics = WorkerMetrics()
    watcher = ModelWatcher(source, key=trust, metrics=metrics, accept=lambda art: None)
    assert watcher.poll_once().version == "v1-1"
    assert refusals(metrics) == {"rollback": 1}


def test_the_watcher_cannot_loosen_the_trust_of_its_source(tmp_path, trust):
    with pytest.raises(ValueError, match="differ"):
        ModelWatcher(
            DirectorySource(tmp_path, trust=trust),
            key=b"some-hmac-key-0123456789",
            accept=lambda art: None,
        )
    watcher = ModelWatcher(
        DirectorySource(tmp_path, trust=trust), key=None, accept=lambda art: None
    )
    assert watcher.trust == trust
