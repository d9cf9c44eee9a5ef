"""Gaussian mixture pieces of DAGMM: parameters from soft memberships, sample energy.

Two implementations of the same formulas:

* ``keras.ops`` (float32, differentiable) for the training loss, backend-agnostic;
* numpy float64 for the final parameters (accumulated over the whole training set in
  batches) and for scoring, where the Cholesky factors are computed once with escalating
  jitter (``linalg.safe_cholesky``) so a scored row can never become NaN.

Sample energy (Zong et al. 2018, eq. 6), with ``Sigma_k = L_k L_k^T``::

    E(z) = -log sum_k phi_k exp(-1/2 |L_k^{-1}(z - mu_k)|^2) / sqrt(|2 pi Sigma_k|)
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from stream_od.detector.linalg import safe_cholesky, whitening

LOG_2PI = math.log(2.0 * math.pi)


# -- keras.ops (training) -----------------------------------------------------------------
def gmm_params(z, gamma):
    """phi (K,), mu (K, D), cov (K, D, D) from samples ``z`` (N, D), memberships (N, K)."""
    n = ops.cast(ops.shape(z)[0], z.dtype)
    nk = ops.sum(gamma, axis=0)                                      # (K,)
    phi = nk / n
    mu = ops.matmul(ops.transpose(gamma), z) / ops.expand_dims(nk, -1)   # (K, D)
    diff = ops.expand_dims(z, 0) - ops.expand_dims(mu, 1)            # (K, N, D)
    wdiff = diff * ops.expand_dims(ops.transpose(gamma), -1)         # (K, N, D)
    cov = ops.matmul(ops.transpose(wdiff, (0, 2, 1)), diff)          # (K, D, D)
    cov = cov / ops.reshape(nk, (-1, 1, 1))
    return phi, mu, cov


def gmm_energy(z, phi, mu, cov, *, jitter: float):
    """Per-sample energy (N,) and the covariance penalty ``sum_k sum_j 1 / Sigma_k[j, j]``.

    ``jitter`` (absolute, plus 1e-6 of the mean variance) keeps the batch covariance
    positive definite for the Cholesky factorization.
    """
    d = ops.shape(z)[1]
    eye = ops.eye(d, dtype=z.dtype)
    diag = ops.diagonal(cov, axis1=1, axis2=2)                       # (K, D)
    ridge = jitter + 1e-6 * ops.mean(diag, axis=1)                   # (K,)
    cov_j = cov + ops.reshape(ridge, (-1, 1, 1)) * eye
    chol = ops.cholesky(cov_j)                                       # (K, D, D)
    diff = ops.expand_dims(z, 0) - ops.expand_dims(mu, 1)            # (K, N, D)
    sol = ops.solve_triangular(chol, ops.transpose(diff, (0, 2, 1)), lower=True)  # (K, D, N)
    maha = ops.sum(ops.square(sol), axis=1)                          # (K, N)
    half_logdet = ops.sum(ops.log(ops.diagonal(chol, axis1=1, axis2=2)), axis=1)  # (K,)
    logits = (ops.expand_dims(ops.log(phi) - half_logdet, -1)
              - 0.5 * maha - 0.5 * ops.cast(d, z.dtype) * LOG_2PI)
    energy = -ops.logsumexp(logits, axis=0)
    cov_penalty = ops.sum(1.0 / ops.diagonal(cov_j, axis1=1, axis2=2))
    return energy, cov_penalty


# -- numpy float64 (final parameters and scoring) ----------------------------------------
class MixtureAccumulator:
    """gamma-weighted statistics over many batches, two passes (means, then centred
    covariances) so nothing needs the whole training set in memory at once."""

    def __init__(self, n_components: int, dim: int) -> None:
        self.nk = np.zeros(n_components)
        self.sum_z = np.zeros((n_components, dim))
        self.sum_cov = np.zeros((n_components, dim, dim))
        self.mu = None

    def add_mean(self, z: np.ndarray, gamma: np.ndarray) -> None:
        z, gamma = np.asarray(z, np.float64), np.asarray(gamma, np.float64)
        self.nk += gamma.sum(axis=0)
        self.sum_z += gamma.T @ z

    def finish_mean(self) -> None:
        if not (self.nk > 0).all():
            raise FloatingPointError(
                f"a mixture component received no mass (weights {self.nk}); reduce n_gmm")
        self.mu = self.sum_z / self.nk[:, None]

    def add_cov(self, z: np.ndarray, gamma: np.ndarray) -> None:
        z, gamma = np.asarray(z, np.float64), np.asarray(gamma, np.float64)
        for k in range(self.nk.shape[0]):
            diff = z - self.mu[k]
            self.sum_cov[k] += (diff * gamma[:, k:k + 1]).T @ diff

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        phi = self.nk / self.nk.sum()
        cov = self.sum_cov / self.nk[:, None, None]
        return phi, self.mu, cov


class MixtureEnergy:
    """Float64 sample energy of a fitted mixture; factorizes once at construction."""

    def __init__(self, phi: np.ndarray, mu: np.ndarray, cov: np.ndarray, *, jitter: float) -> None:
        self.phi, self.mu, self.cov = (np.asarray(a, np.float64) for a in (phi, mu, cov))
        if not (np.isfinite(self.phi).all() and (self.phi > 0).all()):
            raise FloatingPointError(f"invalid mixture weights {self.phi}")
        chols, jitters = zip(*(safe_cholesky(c, min_jitter=jitter) for c in self.cov))
        self.jitters = tuple(float(j) for j in jitters)
        self.W = np.stack([whitening(c) for c in chols])                      # (K, D, D)
        half_logdet = np.array([np.log(np.diag(c)).sum() for c in chols])
        d = self.mu.shape[1]
        self.log_coef = np.log(self.phi) - half_logdet - 0.5 * d * LOG_2PI   # (K,)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float64)
        # einsum without BLAS: a row's energy does not depend on the rest of the batch
        y = np.einsum("nd,kde->kne", z, self.W) - np.einsum("kd,kde->ke", self.mu, self.W)[:, None, :]
        logits = self.log_coef[:, None] - 0.5 * np.einsum("kne,kne->kn", y, y)
        m = logits.max(axis=0)
        return -(m + np.log(np.exp(logits - m).sum(axis=0)))
