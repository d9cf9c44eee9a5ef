"""The Gaussian mixture of DAGMM's training loss, in ``keras.ops`` (float32, differentiable,
any backend): the same formulas as the numpy float64 ones in :mod:`stream_od.detector.gmm`
that fit the final mixture and score.  Only training imports this module."""

from __future__ import annotations

from keras import ops

from stream_od.detector.gmm import LOG_2PI


def gmm_params(z, gamma):
    """phi (K,), mu (K, D), cov (K, D, D) from samples ``z`` (N, D), memberships (N, K)."""
    n = ops.cast(ops.shape(z)[0], z.dtype)
    nk = ops.sum(gamma, axis=0)  # (K,)
    phi = nk / n
    mu = ops.matmul(ops.transpose(gamma), z) / ops.expand_dims(nk, -1)  # (K, D)
    diff = ops.expand_dims(z, 0) - ops.expand_dims(mu, 1)  # (K, N, D)
    wdiff = diff * ops.expand_dims(ops.transpose(gamma), -1)  # (K, N, D)
    cov = ops.matmul(ops.transpose(wdiff, (0, 2, 1)), diff)  # (K, D, D)
    cov = cov / ops.reshape(nk, (-1, 1, 1))
    return phi, mu, cov


def gmm_energy(z, phi, mu, cov, *, jitter: float):
    """Per-sample energy (N,) and the covariance penalty ``sum_k sum_j 1 / Sigma_k[j, j]``.

    ``jitter`` (absolute, plus 1e-6 of the mean variance) keeps the batch covariance
    positive definite for the Cholesky factorization.
    """
    d = ops.shape(z)[1]
    eye = ops.eye(d, dtype=z.dtype)
    diag = ops.diagonal(cov, axis1=1, axis2=2)  # (K, D)
    ridge = jitter + 1e-6 * ops.mean(diag, axis=1)  # (K,)
    cov_j = cov + ops.reshape(ridge, (-1, 1, 1)) * eye
    chol = ops.cholesky(cov_j)  # (K, D, D)
    diff = ops.expand_dims(z, 0) - ops.expand_dims(mu, 1)  # (K, N, D)
    sol = ops.solve_triangular(chol, ops.transpose(diff, (0, 2, 1)), lower=True)  # (K, D, N)
    maha = ops.sum(ops.square(sol), axis=1)  # (K, N)
    half_logdet = ops.sum(ops.log(ops.diagonal(chol, axis1=1, axis2=2)), axis=1)  # (K,)
    logits = (
        ops.expand_dims(ops.log(phi) - half_logdet, -1)
        - 0.5 * maha
        - 0.5 * ops.cast(d, z.dtype) * LOG_2PI
    )
    energy = -ops.logsumexp(logits, axis=0)
    cov_penalty = ops.sum(1.0 / ops.diagonal(cov_j, axis1=1, axis2=2))
    return energy, cov_penalty
