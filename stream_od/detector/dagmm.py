"""DAGMM network shared by VAEGMM and AEGMM: compression net, reconstruction features,
estimation net, and the loss in ``compute_loss`` (Keras 3, any backend)."""

from __future__ import annotations

import keras
from keras import ops

from stream_od.detector.forward import EPS, RECON_FEATURES
from stream_od.detector.gmm_loss import gmm_energy, gmm_params
from stream_od.detector.networks import mlp

__all__ = ["EPS", "RECON_FEATURES", "DAGMMNet", "reconstruction_features"]


def reconstruction_features(x, x_rec, names=("relative_distance", "cosine")):
    """Reconstruction features, one column each, in ``names`` order (N, len(names)).

    ``relative_distance`` is ``|x - x'| / |x|`` and ``cosine`` the cosine similarity, as the
    paper defines them.  Both are scale-invariant: on z-scored inputs they cannot tell a
    record twenty standard deviations out from a poorly reconstructed one near the mean.
    ``log_distance``, ``log |x - x'|``, keeps that magnitude (the paper allows further
    distance features).  The epsilon sits inside the square roots, so every feature stays
    finite (and differentiable) for ``x == 0`` or ``x == x'``.
    """
    nx = ops.sqrt(ops.sum(ops.square(x), axis=1) + EPS)
    nr = ops.sqrt(ops.sum(ops.square(x_rec), axis=1) + EPS)
    nd = ops.sqrt(ops.sum(ops.square(x - x_rec), axis=1) + EPS)
    columns = {
        "relative_distance": lambda: nd / nx,
        "cosine": lambda: ops.sum(x * x_rec, axis=1) / (nx * nr),
        "log_distance": lambda: ops.log(nd),
    }
    return ops.stack([columns[n]() for n in names], axis=1)


class DAGMMNet(keras.Model):
    """Outputs a dict: ``x`` (tiled input), ``x_rec``, ``zc`` (latent + 2 reconstruction
    features), ``gamma`` (memberships) and, when variational, ``z_mean``/``z_log_var``.

    In inference (``training=False``) a variational net uses the posterior mean, so
    outputs are deterministic.
    """

    def __init__(
        self,
        *,
        n_features,
        encoder_units,
        latent_dim,
        decoder_units,
        estimation_units,
        n_gmm,
        activation,
        variational,
        n_samples,
        w_recon,
        w_energy,
        w_cov_diag,
        w_kl,
        recon_scale,
        jitter,
        seed,
        recon_features=("relative_distance", "cosine"),
        **kwargs,
    ):
        super().__init__(**kwargs)
        unknown = set(recon_features) - set(RECON_FEATURES)
        if unknown:
            raise ValueError(
                f"unknown reconstruction features {sorted(unknown)}; choose from {RECON_FEATURES}"
            )
        self.recon_features = tuple(recon_features)
        self.n_features = n_features
        self.variational = variational
        self.n_samples = n_samples
        self.w_recon, self.w_energy, self.w_cov_diag, self.w_kl = (
            w_recon,
            w_energy,
            w_cov_diag,
            w_kl,
        )
        self.recon_scale, self.jitter = recon_scale, jitter
        self.encoder = mlp(encoder_units, activation=activation, name="encoder")
        if variational:
            self.z_mean = keras.layers.Dense(latent_dim, name="z_mean")
            self.z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")
        else:
            self.z_mean = keras.layers.Dense(latent_dim, name="z")
        self.decoder = mlp(
            decoder_units, activation=activation, output_units=n_features, name="decoder"
        )
        self.estimation = mlp(
            estimation_units,
            activation=activation,
            output_units=n_gmm,
            output_activation="softmax",
            name="estimation",
        )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        h = self.encoder(x)
        z_mean = self.z_mean(h)
        out = {}
        if self.variational:
            z_log_var = self.z_log_var(h)
            out.update(z_mean=z_mean, z_log_var=z_log_var)
            if training and self.n_samples > 0:
                s = self.n_samples
                x = ops.tile(x, (s, 1))
                mean, log_var = ops.tile(z_mean, (s, 1)), ops.tile(z_log_var, (s, 1))
                noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
                z = mean + ops.exp(0.5 * log_var) * noise
            else:
                z = z_mean
        else:
            z = z_mean
        x_rec = self.decoder(z)
        zc = ops.concatenate([z, reconstruction_features(x, x_rec, self.recon_features)], axis=1)
        gamma = self.estimation(zc, training=training)
        out.update(x=x, x_rec=x_rec, zc=zc, gamma=gamma)
        return out

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        p = y_pred
        phi, mu, cov = gmm_params(p["zc"], p["gamma"])
        energy, cov_penalty = gmm_energy(p["zc"], phi, mu, cov, jitter=self.jitter)
        sq = ops.sum(ops.square(p["x"] - p["x_rec"]), axis=1)
        if self.variational:
            # Gaussian negative log-likelihood with scale ``recon_scale`` (the ELBO term)
            d = ops.cast(self.n_features, sq.dtype)
            recon = ops.mean(
                0.5 * sq / self.recon_scale**2
                + d * (ops.log(self.recon_scale) + 0.5 * 1.8378770664093453)
            )
            lv = p["z_log_var"]
            kl = -0.5 * ops.mean(1.0 + lv - ops.square(p["z_mean"]) - ops.exp(lv))
        else:
            recon = ops.mean(sq) / self.n_features
            kl = 0.0
        return (
            self.w_recon * recon
            + self.w_energy * ops.mean(energy)
            + self.w_cov_diag * cov_penalty
            + self.w_kl * kl
        )
