"""Mixture parameters, sample energy and reconstruction features vs hand-written numpy."""

import numpy as np
import pytest
from keras import ops

from stream_od.detector.dagmm import reconstruction_features
from stream_od.detector.gmm import MixtureAccumulator, MixtureEnergy, fit_mixture_em
from stream_od.detector.gmm_loss import gmm_energy, gmm_params


def _data(n=300, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    logits = rng.normal(size=(n, k))
    gamma = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return z, gamma


def _np_params(z, gamma):
    nk = gamma.sum(0)
    phi = nk / len(z)
    mu = np.stack([(gamma[:, k : k + 1] * z).sum(0) / nk[k] for k in range(gamma.shape[1])])
    cov = np.stack(
        [
            sum(gamma[i, k] * np.outer(z[i] - mu[k], z[i] - mu[k]) for i in range(len(z))) / nk[k]
            for k in range(gamma.shape[1])
        ]
    )
    return phi, mu, cov


def _np_energy(z, phi, mu, cov):
    out = []
    for x in z:
        tot = 0.0
        for k in range(len(phi)):
            d = x - mu[k]
            dens = np.exp(-0.5 * d @ np.linalg.inv(cov[k]) @ d) / np.sqrt(
                np.linalg.det(2 * np.pi * cov[k])
            )
            tot += phi[k] * dens
        out.append(-np.log(tot))
    return np.array(out)


def test_gmm_params_match_numpy():
    z, gamma = _data()
    phi, mu, cov = (
        ops.convert_to_numpy(t)
        for t in gmm_params(
            ops.convert_to_tensor(z.astype("float32")),
            ops.convert_to_tensor(gamma.astype("float32")),
        )
    )
    ephi, emu, ecov = _np_params(z, gamma)
    np.testing.assert_allclose(phi, ephi, rtol=1e-5)
    np.testing.assert_allclose(mu, emu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cov, ecov, rtol=1e-4, atol=1e-5)


def test_keras_energy_matches_numpy():
    z, gamma = _data()
    phi, mu, cov = _np_params(z, gamma)
    e, pen = gmm_energy(
        *(ops.convert_to_tensor(a.astype("float32")) for a in (z, phi, mu, cov)), jitter=0.0
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(e), _np_energy(z, phi, mu, cov), rtol=1e-4, atol=1e-4
    )
    expected_pen = sum(
        (1.0 / np.diag(c * (1 + 1e-6 * 0) + 1e-6 * np.mean(np.diag(c)) * np.eye(3))).sum()
        for c in cov
    )
    np.testing.assert_allclose(float(ops.convert_to_numpy(pen)), expected_pen, rtol=1e-4)


def test_float64_energy_and_accumulator():
    z, gamma = _data()
    acc = MixtureAccumulator(2, 3)
    for s in range(0, 300, 64):  # batched, two passes
        acc.add_mean(z[s : s + 64], gamma[s : s + 64])
    acc.finish_mean()
    for s in range(0, 300, 64):
        acc.add_cov(z[s : s + 64], gamma[s : s + 64])
    phi, mu, cov = acc.result()
    ephi, emu, ecov = _np_params(z, gamma)
    np.testing.assert_allclose(phi, ephi, rtol=1e-12)
    np.testing.assert_allclose(mu, emu, rtol=1e-10)
    np.testing.assert_allclose(cov, ecov, rtol=1e-10)
    energy = MixtureEnergy(phi, mu, cov, jitter=0.0)
    np.testing.assert_allclose(energy(z), _np_energy(z, phi, mu, cov), rtol=1e-9)


def test_energy_survives_singular_covariance():
    z, gamma = _data()
    z[:, 2] = z[:, 1]  # rank-deficient latent space
    energy = MixtureEnergy(*_np_params(z, gamma), jitter=0.0)
    assert np.isfinite(energy(z)).all()
    assert max(energy.jitters) > 0.0  # jitter had to escalate


def test_reconstruction_features():
    rng = np.random.default_rng(1)
    x, xr = rng.normal(size=(50, 5)), rng.normal(size=(50, 5))
    x[0] = xr[0]  # perfect reconstruction
    f = ops.convert_to_numpy(
        reconstruction_features(
            ops.convert_to_tensor(x.astype("float32")), ops.convert_to_tensor(xr.astype("float32"))
        )
    )
    rel = np.linalg.norm(x - xr, axis=1) / np.linalg.norm(x, axis=1)
    cos = (x * xr).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(xr, axis=1))
    np.testing.assert_allclose(f[1:, 0], rel[1:], rtol=1e-4)
    np.testing.assert_allclose(f[:, 1], cos, rtol=1e-4, atol=1e-6)
    assert f[0, 0] < 1e-4 and np.isfinite(f).all()  # not collapsed to 0 for other rows
    assert (f[1:, 0] > 0.1).all()


def test_log_distance_keeps_the_magnitude_the_paper_features_lose():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 5))
    xr = 0.5 * x  # the same relative error at every scale
    names = ("relative_distance", "cosine", "log_distance")
    to = ops.convert_to_tensor
    small = ops.convert_to_numpy(
        reconstruction_features(to(x.astype("float32")), to(xr.astype("float32")), names)
    )
    big = ops.convert_to_numpy(
        reconstruction_features(
            to((20 * x).astype("float32")), to((20 * xr).astype("float32")), names
        )
    )
    np.testing.assert_allclose(small[:, :2], big[:, :2], rtol=1e-4)  # scale-invariant
    np.testing.assert_allclose(
        small[:, 2], np.log(np.linalg.norm(x - xr, axis=1)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(big[:, 2] - small[:, 2], np.log(20.0), rtol=1e-4)
    with pytest.raises(ValueError, match="unknown reconstruction features"):
        from stream_od.detector.dagmm import DAGMMNet

        DAGMMNet(
            n_features=5,
            encoder_units=(4,),
            latent_dim=1,
            decoder_units=(4,),
            estimation_units=(4,),
            n_gmm=2,
            activation="tanh",
            variational=False,
            n_samples=0,
            w_recon=1,
            w_energy=0.1,
            w_cov_diag=0.005,
            w_kl=0,
            recon_scale=1,
            jitter=1e-6,
            seed=0,
            recon_features=("euclid",),
        )


def _mixture(k, d=5, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d))
    cov = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
    return rng.dirichlet(np.ones(k)), rng.normal(scale=3.0, size=(k, d)), cov


@pytest.mark.parametrize("k", [1, 2, 12])
def test_energy_matches_numpy_for_many_components(k):
    phi, mu, cov = _mixture(k)
    z = np.random.default_rng(4).normal(scale=3.0, size=(200, 5))
    energy = MixtureEnergy(phi, mu, cov, jitter=0.0)
    # rtol: the hand-written reference inverts ill-conditioned covariances explicitly
    np.testing.assert_allclose(energy(z), _np_energy(z, phi, mu, cov), rtol=1e-7)


def test_energy_of_a_row_does_not_depend_on_its_batch():
    phi, mu, cov = _mixture(12)
    energy = MixtureEnergy(phi, mu, cov, jitter=1e-6)
    z = np.random.default_rng(5).normal(scale=3.0, size=(3 * MixtureEnergy.chunk_rows + 17, 5))
    batch = energy(z)
    rows = [0, 1, MixtureEnergy.chunk_rows - 1, MixtureEnergy.chunk_rows, len(z) - 1]
    assert [energy(z[i : i + 1])[0] for i in rows] == batch[rows].tolist()  # bit-identical
    assert np.array_equal(energy(z[5:900]), batch[5:900])
    assert energy(z[:0]).shape == (0,)


def test_em_refit_recovers_a_known_mixture():
    rng = np.random.default_rng(6)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    z = np.concatenate(
        [rng.normal(size=(4000, 2)) * s + c for c, s in zip(centres, (1.0, 0.5, 2.0))]
    )
    phi, mu, cov = fit_mixture_em(z, 3, seed=0)
    order = np.argsort(mu[:, 0] + 2 * mu[:, 1])
    np.testing.assert_allclose(mu[order], centres, atol=0.15)
    np.testing.assert_allclose(phi, 1 / 3, atol=1e-3)
    np.testing.assert_allclose([np.sqrt(c[0, 0]) for c in cov[order]], (1.0, 0.5, 2.0), rtol=0.1)
    again = fit_mixture_em(z, 3, seed=0)
    for a, b in zip((phi, mu, cov), again):
        np.testing.assert_array_equal(a, b)  # seeded: reproducible


def test_em_refit_refuses_to_ship_an_unconverged_mixture():
    z = np.random.default_rng(7).normal(size=(2000, 3))
    with pytest.raises(FloatingPointError, match="did not converge"):
        fit_mixture_em(z, 8, seed=0, max_iter=1)
    with pytest.raises(ValueError, match="at least 8 rows"):
        fit_mixture_em(z[:5], 8, seed=0)
