import numpy as np
import pytest

from stream_od.detector import Mahalanobis, NotFittedError


def _gauss(n, d=4, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    return rng.normal(size=(n, d)) @ A + rng.normal(size=d)


def test_score_matches_numpy_inverse():
    X = _gauss(2000)
    det = Mahalanobis(jitter=0.0).fit(X)
    D = X - X.mean(0)
    P = np.linalg.inv(D.T @ D / len(X))
    expected = np.einsum("nd,de,ne->n", D, P, D)
    np.testing.assert_allclose(det.score(X), expected, rtol=1e-8)
    assert det.mu_.shape == (4,) and det.cov_.shape == (4, 4) and det.n_features_in_ == 4


def test_contributions_sum_to_score():
    X = _gauss(500)
    det = Mahalanobis().fit(X)
    np.testing.assert_allclose(det.contributions(X[:10]).sum(1), det.score(X[:10]), rtol=1e-8)


def test_predict_requires_threshold_and_unfitted_raises():
    with pytest.raises(NotFittedError):
        Mahalanobis().score(np.zeros((2, 3)))
    det = Mahalanobis().fit(_gauss(100))
    with pytest.raises(NotFittedError):
        det.predict(_gauss(3))


def test_singular_covariance_is_regularized_not_nan():
    X = _gauss(300)
    X = np.column_stack([X, X[:, 0], np.ones(300)])  # duplicate + constant column
    det = Mahalanobis(jitter=0.0).fit(X)
    assert np.isfinite(det.score(X)).all()


def test_row_score_independent_of_batch():
    X = _gauss(1000)
    det = Mahalanobis().fit(X)
    full = det.score(X)
    assert all(det.score(X[i : i + 1])[0] == full[i] for i in (0, 17, 999))


def test_separates_shifted_points():
    from sklearn.metrics import roc_auc_score

    X = _gauss(2000)
    out = _gauss(100, seed=1) * 3 + 5
    det = Mahalanobis().fit(X)
    y = np.r_[np.zeros(500), np.ones(100)]
    assert roc_auc_score(y, det.score(np.r_[X[:500], out])) > 0.95
