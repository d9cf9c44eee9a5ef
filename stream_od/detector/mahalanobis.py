"""Mahalanobis distance to the training mean: the strong, cheap baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from stream_od.detector.base import BaseDetector
from stream_od.detector.linalg import rowwise_mahalanobis, safe_cholesky, whitening
from stream_od.features import check_matrix


class Mahalanobis(BaseDetector):
    """Score = squared Mahalanobis distance ``(x - mu_)^T cov_^{-1} (x - mu_)``.

    Parameters
    ----------
    jitter
        Absolute ridge added to the covariance diagonal before the Cholesky factorization
        (escalated automatically if the factorization still fails).
    """

    kind = "mahalanobis"

    # fitted
    mu_: np.ndarray
    cov_: np.ndarray
    jitter_: float
    _W: np.ndarray
    _P: np.ndarray

    def __init__(self, *, jitter: float = 1e-6) -> None:
        self.jitter = jitter

    def fit(self, X: np.ndarray, **_: Any) -> Mahalanobis:
        X = check_matrix(X)
        if X.shape[0] < 2:
            raise ValueError("need at least 2 rows to estimate a covariance")
        if not self.jitter >= 0:
            raise ValueError("jitter must be >= 0")
        self.n_features_in_ = X.shape[1]
        self.mu_ = X.mean(axis=0)
        D = X - self.mu_
        self.cov_ = D.T @ D / X.shape[0]
        self._factorize()
        self.threshold_ = None
        return self

    def _factorize(self) -> None:
        chol, self.jitter_ = safe_cholesky(self.cov_, min_jitter=self.jitter)
        self._W = whitening(chol)
        self._P = self._W @ self._W.T  # (cov + jitter I)^{-1}

    def _score_batch(self, X: np.ndarray) -> np.ndarray:
        return rowwise_mahalanobis(X, self.mu_, self._W)

    def _contributions_batch(self, X: np.ndarray) -> np.ndarray:
        # d_j * (P d)_j: sums over j to the score; large positive = drives the anomaly
        D = X - self.mu_
        return D * np.einsum("nd,de->ne", D, self._P)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        return self._common_state(), {"mu_": self.mu_, "cov_": self.cov_}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._set_common_state(meta)
        self.mu_ = np.asarray(arrays["mu_"], np.float64)
        self.cov_ = np.asarray(arrays["cov_"], np.float64)
        if (
            self.mu_.shape != (self.n_features_in_,)
            or self.cov_.shape != (self.n_features_in_,) * 2
        ):
            raise ValueError("mahalanobis state arrays do not match n_features_in_")
        self._factorize()
