"""One function checks a manifest, for a directory (``Artifact.load``) and for the bytes the
registry verified a signature over (``verify_files``), with the same words for each fault."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from stream_od.artifact import Artifact, ArtifactError
from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from stream_od.manifest import MANIFEST, ManifestError, manifest_bytes, verify_manifest
from stream_od.registry import Refused
from stream_od.registry.verify import verify_files
from stream_od.schema import FeatureSchema


@pytest.fixture(scope="module")
def files():
    X = np.random.default_rng(0).normal(size=(200, 2))
    det = Mahalanobis().fit(X).infer_threshold(X, 95)
    art = Artifact(
        detector=det, standardizer=Standardizer().fit(X), schema=FeatureSchema.numeric(("a", "b"))
    )
    return art.to_files()


def _with_manifest(artifact_files, **changes):
    doc = json.loads(artifact_files[MANIFEST])
    doc.update(changes)
    return {**artifact_files, MANIFEST: json.dumps(doc).encode()}


def _faults(files):
    listed = json.loads(files[MANIFEST])["files"]
    no_npz = {k: v for k, v in listed.items() if k != "detector.npz"}
    yield "manifest.json is missing", {k: v for k, v in files.items() if k != MANIFEST}
    yield "is not a valid manifest", {**files, MANIFEST: b"{not json"}
    yield "is not a valid manifest", _with_manifest(files, files=["artifact.json"])
    yield "unsupported artifact format", _with_manifest(files, format_version=99)
    yield "names no version", _with_manifest(files, version="")
    yield "does not list detector.npz", _with_manifest(files, files=no_npz)
    yield "names a file outside the artifact", _with_manifest(files, files={**listed, "../x": "0"})
    yield (
        "detector.npz is listed in manifest.json but missing",
        {k: v for k, v in files.items() if k != "detector.npz"},
    )
    yield (
        "sha256 mismatch for standardizer.json",
        {
            **files,
            "standardizer.json": files["standardizer.json"] + b" ",
        },
    )


def test_the_files_written_pass(files):
    listed = verify_manifest(files, "here")
    assert listed.files == files and listed.version.startswith("mahalanobis-")
    digest = json.loads(files[MANIFEST])["files"]["detector.npz"]
    assert digest == hashlib.sha256(files["detector.npz"]).hexdigest()


def test_each_fault_has_one_wording_for_a_directory_and_for_the_registry(files, tmp_path):
    faults = list(_faults(files))
    assert len(faults) == 9
    for i, (words, broken) in enumerate(faults):
        with pytest.raises(ManifestError, match=words):
            verify_manifest(broken, "art")
        with pytest.raises(Refused, match=words) as refused:
            verify_files(broken, None, "art")
        assert refused.value.reason == "integrity"
        root = tmp_path / str(i)
        root.mkdir()
        for name, data in broken.items():
            if "/" not in name:
                (root / name).write_bytes(data)
        with pytest.raises(ArtifactError, match=words):
            Artifact.load(root)


def test_a_manifest_and_artifact_json_that_disagree_are_refused(files):
    info = json.loads(files["artifact.json"])
    info["version"] = "mahalanobis-other"
    changed = {**files, "artifact.json": json.dumps(info).encode()}
    resigned = {
        **changed,
        MANIFEST: manifest_bytes(
            {k: v for k, v in changed.items() if k != MANIFEST},
            json.loads(files[MANIFEST])["version"],
        ),
    }
    with pytest.raises(ManifestError, match="artifact.json says mahalanobis-other"):
        Artifact.from_files(resigned, "art")


def test_an_artifact_that_holds_columns_is_format_2_and_one_that_does_not_stays_1(
    files, monkeypatch
):
    """A reader of format 1 would score held columns; it must refuse such an artifact rather
    than give other scores than the trainer's, and keep reading every other one."""
    import stream_od.manifest as manifest

    assert json.loads(files[MANIFEST])["format_version"] == 1
    assert json.loads(files["artifact.json"])["format_version"] == 1
    X = np.random.default_rng(0).normal(size=(200, 2))
    X[:, 1] = 0.0  # a field no training row had
    std = Standardizer().fit(X, held=[1])
    art = Artifact(
        detector=Mahalanobis().fit(std.transform(X)).infer_threshold(std.transform(X), 95),
        standardizer=std,
        schema=FeatureSchema.numeric(("a", "b")),
    )
    held = art.to_files()
    assert json.loads(held[MANIFEST])["format_version"] == 2
    assert json.loads(held["artifact.json"])["format_version"] == 2
    row = np.array([[0.3, 5.0]])
    assert np.array_equal(Artifact.from_files(held, "art").score(row), art.score(row))
    monkeypatch.setattr(manifest, "READABLE_VERSIONS", (1,))  # a reader from before format 2
    with pytest.raises(ManifestError, match="unsupported artifact format .* upgrade the worker"):
        verify_manifest(held, "art")
    verify_manifest(files, "art")
