"""Small VAEGMM / AEGMM fits on synthetic data: separation, determinism, round trip."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from stream_od.artifact import Artifact
from stream_od.detector import AEGMM, VAEGMM
from stream_od.features import Standardizer
from stream_od.schema import FeatureSchema


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, 6)) * 2
    normal = np.concatenate([rng.normal(size=(1500, 6)) * 0.3 + c for c in centres])
    outliers = rng.uniform(-6, 6, size=(100, 6))
    return normal.astype(np.float64), outliers


@pytest.fixture(scope="module", params=["vaegmm", "aegmm"])
def fitted(request):
    normal, outliers = _blobs()
    cls = VAEGMM if request.param == "vaegmm" else AEGMM
    det = cls(epochs=3, batch_size=256, learning_rate=3e-3, seed=0).fit(normal)
    return det, normal, outliers


def test_fitted_attributes(fitted):
    det, normal, _ = fitted
    k, d = det.mu_.shape
    assert det.phi_.shape == (k,) and det.cov_.shape == (k, d, d) and det.n_features_in_ == 6
    np.testing.assert_allclose(det.phi_.sum(), 1.0)
    assert d == det.latent_dim + len(det.recon_features)
    # VAEGMM refits 12 components by EM; AEGMM keeps the estimation network's n_gmm
    assert k == {"vaegmm": 12, "aegmm": det.n_gmm}[det.kind]


@pytest.mark.parametrize("cls", [VAEGMM, AEGMM])
def test_papers_mixture_from_the_estimation_network(cls):
    normal, outliers = _blobs()
    det = cls(epochs=2, batch_size=256, learning_rate=3e-3, seed=0, mixture_components=0).fit(
        normal
    )
    assert det.phi_.shape == (det.n_gmm,)
    gamma = det._gamma_np(det.latent(normal))
    np.testing.assert_allclose(det.phi_, gamma.mean(axis=0), rtol=1e-6)
    assert np.isfinite(det.score(outliers)).all()


def test_separates_outliers(fitted):
    det, normal, outliers = fitted
    y = np.r_[np.zeros(500), np.ones(100)]
    s = det.score(np.r_[normal[::6], outliers])
    assert s.dtype == np.float64 and np.isfinite(s).all()
    assert roc_auc_score(y, s) > 0.9


def test_deterministic_and_batched(fitted):
    det, normal, _ = fitted
    a, b = det.score(normal), det.score(normal)
    assert np.array_equal(a, b)
    old = det.score_batch_size
    try:
        type(det).score_batch_size = 97  # many chunks: the same scores, bit for bit
        np.testing.assert_array_equal(det.score(normal), a)
    finally:
        type(det).score_batch_size = old
    c = det.contributions(normal[:5])
    assert c.shape == (5, 6) and (c >= 0).all()


def test_score_and_contributions_in_one_pass_match_the_separate_calls(fitted):
    det, normal, outliers = fitted
    X = np.r_[normal[:300], outliers[:20]]
    scores, contrib = det.score_and_contributions(X)
    assert np.array_equal(scores, det.score(X))
    assert np.array_equal(contrib, det.contributions(X))


def test_contributions_are_the_absolute_reconstruction_errors(fitted):
    """|X - x_rec| from the forward pass itself, whatever the layout or width of x_rec, and
    without touching either input."""
    from stream_od.detector._neural import reconstruction_errors

    det, normal, _ = fitted
    X = np.ascontiguousarray(normal[:50], dtype=np.float64)
    _, x_rec = det._forward_np(X)
    X_before, rec_before = X.copy(), np.array(x_rec)
    errors = reconstruction_errors(X, x_rec)
    assert errors.dtype == np.float64 and errors.shape == X.shape
    assert np.array_equal(errors, np.abs(X - np.array(x_rec, dtype=np.float64)))
    assert np.array_equal(X, X_before) and np.array_equal(x_rec, rec_before)
    narrow = np.asarray(x_rec, dtype=np.float32)  # a float32 reconstruction is widened exactly
    assert np.array_equal(reconstruction_errors(X, narrow), np.abs(X - narrow.astype(np.float64)))
    assert np.array_equal(det.contributions(X), errors)


def test_artifact_round_trip_bit_identical(fitted, tmp_path):
    det, normal, outliers = fitted
    std = Standardizer().fit(normal)
    det.infer_threshold(normal[:500], 95)
    art = Artifact(detector=det, standardizer=std, schema=FeatureSchema.numeric(tuple("abcdef")))
    X = np.r_[normal[:300], outliers] * std.scale_ + std.mean_  # raw units
    root = art.save(tmp_path / "a")
    assert not (root / "model.weights.h5").exists(), "the weights live in detector.npz"
    with np.load(root / "detector.npz") as npz:
        assert "net.encoder.0.kernel" in npz.files and "net.decoder.0.kernel" in npz.files
    back = Artifact.load(root)
    assert back.detector_kind == det.kind and back.version == art.version
    assert np.array_equal(back.score(X), art.score(X))
    assert np.array_equal(back.contributions(X), art.contributions(X))
    assert np.array_equal(back.detector.phi_, det.phi_)


def test_artifact_from_before_recon_features_loads_with_the_papers_choices(tmp_path):
    import hashlib
    import json

    normal, _ = _blobs()
    det = VAEGMM(
        epochs=1,
        batch_size=256,
        seed=0,
        mixture_components=0,
        recon_features=("relative_distance", "cosine"),
    ).fit(normal)
    det.infer_threshold(normal[:500], 95)
    std = Standardizer().fit(normal)
    root = Artifact(
        detector=det, standardizer=std, schema=FeatureSchema.numeric(tuple("abcdef"))
    ).save(tmp_path / "old")
    # Rewrite it as an older stream-od wrote it: no recon_features or mixture_components.
    meta = json.loads((root / "detector.json").read_text())
    del meta["params"]["recon_features"], meta["params"]["mixture_components"]
    (root / "detector.json").write_text(json.dumps(meta))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["detector.json"] = hashlib.sha256(
        (root / "detector.json").read_bytes()
    ).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))

    back = Artifact.load(root)
    assert tuple(back.detector.recon_features) == ("relative_distance", "cosine")
    assert back.detector.mixture_components == 0
    assert np.array_equal(back.score(normal[:50]), det.score(std.transform(normal[:50])))


def test_bad_mixture_components_fail_before_training():
    normal, _ = _blobs()
    with pytest.raises(ValueError, match="mixture_components must be an integer >= 0"):
        VAEGMM(epochs=50, mixture_components=-1).fit(normal)


def test_an_artifact_with_keras_weights_file_still_loads_and_scores_the_same(fitted, tmp_path):
    """Artifacts written before the weights moved into detector.npz keep them in Keras'
    model.weights.h5; with Keras installed they load, into the same numpy networks."""
    import hashlib
    import io
    import json

    det, normal, outliers = fitted
    std = Standardizer().fit(normal)
    det.infer_threshold(normal[:500], 95)
    art = Artifact(detector=det, standardizer=std, schema=FeatureSchema.numeric(tuple("abcdef")))
    root = art.save(tmp_path / "old")
    with np.load(root / "detector.npz") as npz:
        kept = {k: npz[k] for k in npz.files if not k.startswith("net.")}
    buf = io.BytesIO()
    np.savez(buf, **kept)
    (root / "detector.npz").write_bytes(buf.getvalue())
    det.model_.save_weights(str(root / "model.weights.h5"))
    manifest = json.loads((root / "manifest.json").read_text())
    for name in ("detector.npz", "model.weights.h5"):
        manifest["files"][name] = hashlib.sha256((root / name).read_bytes()).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))

    back = Artifact.load(root)
    X = np.r_[normal[:300], outliers] * std.scale_ + std.mean_
    assert np.array_equal(back.score(X), art.score(X))
    assert back.detector.scoring_backend == "numpy"
