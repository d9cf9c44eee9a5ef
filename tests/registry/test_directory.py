import logging
import os

import pytest

from stream_od.errors import ArtifactError, ConfigError
from stream_od.metrics import WorkerMetrics
from stream_od.registry import RegistryError
from stream_od.registry.directory import DirectoryRegistry
from stream_od.registry.watcher import DirectorySource, ModelWatcher


def test_publish_then_latest_and_rollback(make_artifact, tmp_path):
    reg = DirectoryRegistry(tmp_path / "reg")
    assert reg.latest() is None
    v1, v2 = reg.publish(make_artifact(1)), reg.publish(make_artifact(2))
    assert (v1, v2) == ("v1-1", "v2-2") and reg.latest() == v2
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == ["LATEST", "versions"]
    assert oct((tmp_path / "reg" / "LATEST").stat().st_mode & 0o777) == "0o644"
    assert reg.path_of(v2) == (tmp_path / "reg" / "versions" / v2).resolve()
    reg.set_latest(v1)  # a rollback is a pointer change
    assert reg.latest() == v1


def test_versions_are_immutable(make_artifact, tmp_path):
    reg = DirectoryRegistry(tmp_path / "reg")
    src = make_artifact()
    reg.publish(src)
    with pytest.raises(RegistryError, match="already"):
        reg.publish(src)
    assert [p.name for p in (tmp_path / "reg").iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("pointer", ["../../etc", "/etc", "a/../../b", ".", "..", "v 1"])
def test_a_pointer_escaping_the_registry_is_refused(make_artifact, tmp_path, pointer):
    reg = DirectoryRegistry(tmp_path / "reg")
    reg.publish(make_artifact())
    (tmp_path / "reg" / "LATEST").write_text(pointer + "\n")
    with pytest.raises(RegistryError, match="unsafe version name"):
        reg.path_of(reg.latest())


def test_a_version_that_is_a_link_out_of_the_registry_is_refused(make_artifact, tmp_path):
    reg = DirectoryRegistry(tmp_path / "reg")
    reg.publish(make_artifact())
    outside = make_artifact(5)
    os.symlink(outside, tmp_path / "reg" / "versions" / "evil")
    (tmp_path / "reg" / "LATEST").write_text("evil\n")
    with pytest.raises(RegistryError, match="outside"):
        reg.path_of("evil")
    # Through the watcher it is a refusal with a reason, and nothing is loaded.
    metrics = WorkerMetrics()
    watcher = ModelWatcher(
        DirectorySource(tmp_path / "reg"), key=None, metrics=metrics, accept=lambda art: None
    )
    assert watcher.poll_once() is None
    assert metrics.model_refusals.labels("malformed")._value.get() == 1


def test_watcher_swaps_once_per_new_version_and_refuses_unservable_schemas(make_artifact, tmp_path):
    reg = DirectoryRegistry(tmp_path / "reg")
    reg.publish(make_artifact(1))
    accepted = []

    def accept(art):
        if art.feature_names != ("a", "b", "c"):
            raise ValueError(f"features {art.feature_names} not in the input")
        accepted.append(art.version)

    metrics = WorkerMetrics()
    watcher = ModelWatcher(
        DirectorySource(tmp_path / "reg"), key=None, metrics=metrics, accept=accept
    )
    assert watcher.poll_once().version == "v1-1"
    assert watcher.poll_once() is None  # nothing new
    reg.publish(make_artifact(2, names=("x", "y")))
    assert watcher.poll_once() is None and watcher.current == "v1-1"
    assert metrics.model_refusals.labels("schema")._value.get() == 1
    assert watcher.poll_once() is None  # refused once, not at every poll
    assert metrics.model_refusals.labels("schema")._value.get() == 1
    reg.publish(make_artifact(3))
    assert watcher.poll_once().version == "v3-3"
    assert accepted == ["v1-1", "v3-3"]


@pytest.mark.parametrize(
    "error, reason",
    [
        (ConfigError("scoring_device=gpu, but Keras' backend (tensorflow) sees no GPU"), "schema"),
        (OSError(28, "No space left on device"), "schema"),
        (ArtifactError("detector.npz: the networks' weights do not load"), "malformed"),
    ],
)
def test_watcher_refuses_a_version_the_worker_cannot_place(
    make_artifact, tmp_path, caplog, error, reason
):
    """``accept`` (``Scorer.build``) failing with more than a ValueError is a refusal too: the
    directory source has seen the version, so an error left to ``_run`` would lose it."""
    reg = DirectoryRegistry(tmp_path / "reg")
    reg.publish(make_artifact(1))
    accepted = []

    def accept(art):
        if art.version == "v2-2":
            raise error
        accepted.append(art.version)

    metrics = WorkerMetrics()
    watcher = ModelWatcher(
        DirectorySource(tmp_path / "reg"), key=None, metrics=metrics, accept=accept
    )
    assert watcher.poll_once().version == "v1-1"
    reg.publish(make_artifact(2))
    with caplog.at_level(logging.WARNING, "stream_od.registry"):
        assert watcher.poll_once() is None
    assert watcher.current == "v1-1"
    assert metrics.model_refusals.labels(reason)._value.get() == 1
    [record] = [r for r in caplog.records if "v2-2" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert f"refused model v2-2 from {tmp_path}/reg/versions/v2-2 (reason={reason})" in (
        record.getMessage()
    )
    assert str(error) in record.getMessage() and "keeping model v1-1" in record.getMessage()
    assert watcher.poll_once() is None  # refused once, not at every poll
    assert metrics.model_refusals.labels(reason)._value.get() == 1
    reg.publish(make_artifact(3))
    assert watcher.poll_once().version == "v3-3"
    assert accepted == ["v1-1", "v3-3"]
