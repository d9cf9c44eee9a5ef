"""Gaussian mixture pieces of DAGMM: parameters from soft memberships, sample energy.

Two implementations of the same formulas:

* ``keras.ops`` (float32, differentiable) for the training loss, backend-agnostic, in
  :mod:`stream_od.detector.gmm_loss`;
* here, numpy float64 for the final parameters (accumulated over the whole training set in
  batches, or refitted there by EM, ``fit_mixture_em``) and for scoring, where the
  Cholesky factors are computed once with escalating jitter (``linalg.safe_cholesky``) so
  a scored row can never become NaN.

Sample energy (Zong et al. 2018, eq. 6), with ``Sigma_k = L_k L_k^T``::

    E(z) = -log sum_k phi_k exp(-1/2 |L_k^{-1}(z - mu_k)|^2) / sqrt(|2 pi Sigma_k|)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from stream_od.detector.linalg import safe_cholesky, whitening

LOG_2PI = math.log(2.0 * math.pi)


# -- numpy float64 (final parameters and scoring) ----------------------------------------
class MixtureAccumulator:
    """gamma-weighted statistics over many batches, two passes (means, then centred
    covariances) so nothing needs the whole training set in memory at once."""

    def __init__(self, n_components: int, dim: int) -> None:
        self.nk = np.zeros(n_components)
        self.sum_z = np.zeros((n_components, dim))
        self.sum_cov = np.zeros((n_components, dim, dim))
        self.mu: np.ndarray | None = None  # set by finish_mean

    def add_mean(self, z: np.ndarray, gamma: np.ndarray) -> None:
        z, gamma = np.asarray(z, np.float64), np.asarray(gamma, np.float64)
        self.nk += gamma.sum(axis=0)
        self.sum_z += gamma.T @ z

    def finish_mean(self) -> None:
        if not (self.nk > 0).all():
            raise FloatingPointError(
                f"a mixture component received no mass (weights {self.nk}); reduce n_gmm"
            )
        self.mu = self.sum_z / self.nk[:, None]

    def _means(self) -> np.ndarray:
        if self.mu is None:
            raise RuntimeError("finish_mean() must come before the covariance pass")
        return self.mu

    def add_cov(self, z: np.ndarray, gamma: np.ndarray) -> None:
        z, gamma = np.asarray(z, np.float64), np.asarray(gamma, np.float64)
        mu = self._means()
        for k in range(self.nk.shape[0]):
            diff = z - mu[k]
            self.sum_cov[k] += (diff * gamma[:, k : k + 1]).T @ diff

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mu = self._means()
        phi = self.nk / self.nk.sum()
        cov = self.sum_cov / self.nk[:, None, None]
        return phi, mu, cov


def fit_mixture_em(
    z: np.ndarray, n_components: int, *, seed: int, reg_covar: float = 1e-6, max_iter: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-likelihood full-covariance mixture of ``z`` by EM: ``(phi, mu, cov)``.

    scikit-learn's ``GaussianMixture`` (k-means start seeded by ``seed``, ``reg_covar`` on
    the diagonal); well tested, and the same E/M formulas as ``gmm_params``.  Raises when
    EM does not converge, rather than shipping a half-fitted density.
    """
    from sklearn.mixture import GaussianMixture

    z = np.asarray(z, np.float64)
    if z.shape[0] < n_components:
        raise ValueError(f"need at least {n_components} rows to fit {n_components} components")
    gm = GaussianMixture(
        n_components,
        covariance_type="full",
        reg_covar=reg_covar,
        max_iter=max_iter,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: checked just below
        gm.fit(z)
    if not gm.converged_:
        raise FloatingPointError(
            f"EM did not converge in {max_iter} iterations for {n_components} components; "
            "lower mixture_components or set it to 0 (the estimation network's mixture)"
        )
    return gm.weights_, gm.means_, gm.covariances_


class MixtureEnergy:
    """Float64 sample energy of a fitted mixture; factorizes once at construction.

    The hot path of every neural detector's ``score``.  It works on transposed row chunks
    that stay in cache (one contiguous vector of samples per output coordinate), with
    element-wise numpy and explicit left-to-right sums over the short axes: no BLAS and
    no pairwise reductions, whose summation order depends on the array's shape.  A row's
    energy is therefore bit-identical whatever batch it arrives in.  The whitening
    factors are upper triangular, and the coordinates are laid out so that input
    dimension ``d`` only touches the ``D - d`` outputs it can reach (15 of 25
    multiply-adds per component in 5-d).
    """

    #: samples per chunk: (K*D, chunk) float64 work arrays of a few hundred KiB
    chunk_rows = 4096

    def __init__(self, phi: np.ndarray, mu: np.ndarray, cov: np.ndarray, *, jitter: float) -> None:
        self.phi, self.mu, self.cov = (np.asarray(a, np.float64) for a in (phi, mu, cov))
        if not (np.isfinite(self.phi).all() and (self.phi > 0).all()):
            raise FloatingPointError(f"invalid mixture weights {self.phi}")
        chols, jitters = zip(*(safe_cholesky(c, min_jitter=jitter) for c in self.cov))
        self.jitters = tuple(float(j) for j in jitters)
        self.W = np.stack([whitening(c) for c in chols])  # (K, D, D)
        half_logdet = np.array([np.log(np.diag(c)).sum() for c in chols])
        k, d = self.mu.shape
        self.log_coef = np.log(self.phi) - half_logdet - 0.5 * d * LOG_2PI  # (K,)
        # _Wt[d, e*K + k] = W[k, d, e]: W[k] is upper triangular, so row d is zero before
        # column d*K; the shift is -W_k^T mu_k in the same layout
        self._Wt = np.ascontiguousarray(self.W.transpose(1, 2, 0).reshape(d, d * k))[:, :, None]
        self._neg_shift = -np.einsum("kd,kde->ek", self.mu, self.W).reshape(d * k, 1)
        self._log_coef_col = self.log_coef[:, None]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float64)
        n = z.shape[0]
        k, d = self.mu.shape
        out = np.empty(n)
        for start in range(0, n, self.chunk_rows):
            zt = np.ascontiguousarray(z[start : start + self.chunk_rows].T)  # (D, m)
            m = zt.shape[1]
            y = np.empty((d * k, m))
            tmp = np.empty((d * k, m))
            y[:] = self._neg_shift
            for j in range(d):  # y_k = W_k^T (z - mu_k), (D*K, m)
                lo = j * k
                np.multiply(zt[j], self._Wt[j, lo:], out=tmp[lo:])
                y[lo:] += tmp[lo:]
            np.square(y, out=y)
            y3 = y.reshape(d, k, m)
            q = y3[0].copy()  # squared Mahalanobis, (K, m)
            for j in range(1, d):
                q += y3[j]
            q *= -0.5
            q += self._log_coef_col
            top = q.max(axis=0)
            q -= top
            np.exp(q, out=q)
            total = q[0].copy()
            for c in range(1, k):
                total += q[c]
            out[start : start + m] = -(top + np.log(total))
        return out
