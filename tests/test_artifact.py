import json

import numpy as np
import pytest

from stream_od.artifact import Artifact, ArtifactError, cpu_vector_isa, library_versions
from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from stream_od.schema import FeatureSchema


@pytest.fixture
def artifact():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * [1, 100, 0.01] + [0, 50, 1]
    st = Standardizer().fit(X)
    det = Mahalanobis().fit(st.transform(X)).infer_threshold(st.transform(X), 95)
    return Artifact(detector=det, standardizer=st, schema=FeatureSchema.numeric(("a", "b", "c"))), X


def test_save_load_bit_identical(artifact, tmp_path):
    art, X = artifact
    art.save(tmp_path / "a")
    back = Artifact.load(tmp_path / "a")
    assert back.version == art.version and back.version.startswith("mahalanobis-")
    assert back.feature_names == ("a", "b", "c") and back.detector_kind == "mahalanobis"
    assert back.threshold == art.threshold
    assert np.array_equal(back.score(X), art.score(X))
    assert np.array_equal(back.predict(X), art.predict(X))
    assert np.array_equal(back.contributions(X), art.contributions(X))
    assert back.score(X).dtype == np.float64
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "artifact.json",
        "standardizer.json",
        "detector.json",
        "detector.npz",
    }


def test_tamper_and_missing(artifact, tmp_path):
    art, _ = artifact
    root = art.save(tmp_path / "a")
    with open(root / "standardizer.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        Artifact.load(root)
    (root / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        Artifact.load(root)
    with pytest.raises(ArtifactError, match="not found"):
        Artifact.load(tmp_path / "nope")


def test_refuses_non_empty_dir(artifact, tmp_path):
    art, _ = artifact
    art.save(tmp_path / "a")
    with pytest.raises(ArtifactError, match="not empty"):
        art.save(tmp_path / "a")


def test_wrong_width_input(artifact):
    art, _ = artifact
    with pytest.raises(ValueError, match="expected 3 features"):
        art.score(np.zeros((2, 4)))


def test_records_the_training_cpu_and_onednn_caps(artifact, tmp_path, monkeypatch):
    """Training differs by the CPU's vector instructions (oneDNN), so the artifact says which."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    libs = library_versions()
    assert libs["ONEDNN_MAX_CPU_ISA"] == "AVX2" and "TF_ENABLE_ONEDNN_OPTS" not in libs
    assert libs["machine"] and libs["numpy"] == np.__version__
    art, _ = artifact
    art.libraries = libs
    art.save(tmp_path / "a")
    assert Artifact.load(tmp_path / "a").libraries == libs


@pytest.mark.parametrize(
    ("flags", "isa"),
    [
        ("fpu sse2 avx2 avx512f amx_tile amx_bf16", "avx512+amx"),
        ("fpu sse2 avx2 avx512f avx512bw", "avx512"),
        ("fpu sse2 avx avx2 fma", "avx2"),
        ("fpu sse2 sse4_2", "sse"),
    ],
)
def test_cpu_vector_isa_from_cpuinfo(flags, isa):
    cpuinfo = f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
    assert cpu_vector_isa(cpuinfo) == isa


def test_cpu_vector_isa_unknown_without_x86_flags():
    assert cpu_vector_isa("processor\t: 0\nFeatures\t: fp asimd\n") is None
