import os

import pytest

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
