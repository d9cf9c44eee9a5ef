"""Float64 numpy pieces shared by the detectors: safe Cholesky and Gaussian energies."""

from __future__ import annotations

import numpy as np

#: relative jitters tried in turn, as a fraction of the mean variance
JITTERS = (0.0, 1e-9, 1e-7, 1e-5, 1e-3, 1e-1)


def safe_cholesky(cov: np.ndarray, *, min_jitter: float = 1e-6) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``cov + jitter * I`` and the jitter used.

    Starts at ``min_jitter`` (absolute) and escalates through ``JITTERS`` (relative to the
    mean diagonal) until the factorization succeeds; raises ``LinAlgError`` naming the
    problem if even the largest jitter fails (NaN/inf in the covariance).
    """
    cov = np.asarray(cov, dtype=np.float64)
    if not np.isfinite(cov).all():
        raise np.linalg.LinAlgError("covariance contains NaN or infinity; training diverged")
    cov = 0.5 * (cov + cov.T)
    scale = max(float(np.mean(np.diag(cov))), 1e-12)
    eye = np.eye(cov.shape[0])
    for rel in JITTERS:
        jitter = min_jitter + rel * scale
        try:
            return np.linalg.cholesky(cov + jitter * eye), jitter
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError(
        f"covariance is not positive definite even with jitter {jitter:.3g}"
    )


def whitening(chol: np.ndarray) -> np.ndarray:
    """``W`` with ``(x - mu) @ W == solve(L, x - mu)`` row-wise (i.e. ``inv(L).T``)."""
    eye = np.eye(chol.shape[0])
    return np.linalg.solve(chol, eye).T


def rowwise_mahalanobis(X: np.ndarray, mu: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row.  ``einsum`` without BLAS so that a
    row's value never depends on the other rows in the batch."""
    Y = np.einsum("nd,de->ne", X - mu, W)
    return np.einsum("ne,ne->n", Y, Y)
