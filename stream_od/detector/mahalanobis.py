"""Mahalanobis distance to the training mean: the strong, cheap baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from stream_od.detector.base import BaseDetector, DetectorState
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

    def __getstate__(self) -> DetectorState:
        state = super().__getstate__()
        if state.fitted is None:
            return state
        return state.adding(arrays={"mu_": self.mu_, "cov_": self.cov_})

    def __setstate__(self, state: DetectorState) -> None:
        super().__setstate__(state)
        if state.fitted is None:
            return
        self.mu_ = np.asarray(state.arrays["mu_"], np.float64)
        self.cov_ = np.asarray(state.arrays["cov_"], np.float64)
        if (
            self.mu_.shape != (self.n_features_in_,)
            or self.cov_.shape != (self.n_features_in_,) * 2
        ):
            raise ValueError("mahalanobis state arrays do not match n_features_in_")
        self._factorize()
