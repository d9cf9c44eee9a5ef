"""Fit / score machinery shared by the VAEGMM and AEGMM detectors.

Training runs in Keras (TensorFlow by default), in float32.  Scoring runs the trained
networks in numpy, in float64 (:mod:`stream_od.detector.forward`), so a worker needs neither
TensorFlow nor a Keras model; :meth:`NeuralGMMDetector.use_keras` switches scoring to Keras'
compiled function of the same networks, built in float64 too (:func:`scoring_model`), on a GPU
when one is there (:mod:`stream_od.detector.device`).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_od.detector.base import BaseDetector, DetectorState
from stream_od.detector.distinct import REPEATED, distinct_rows
from stream_od.detector.forward import ACTIVATIONS, DTYPE, SUMS, Networks
from stream_od.detector.gmm import MixtureAccumulator, MixtureEnergy, fit_mixture_em
from stream_od.errors import StreamODError
from stream_od.features import check_matrix

if TYPE_CHECKING:
    from stream_od.detector.dagmm import DAGMMNet

WEIGHTS_FILE = "model.weights.h5"


class NonFiniteLossError(StreamODError, FloatingPointError):
    """Training produced a NaN/inf loss; the detector refuses to continue."""


def _bucket(n: int, smallest: int = 8) -> int:
    """The padded batch size for ``n`` rows: the next power of two, at least ``smallest``."""
    return max(smallest, 1 << max(n - 1, 0).bit_length())


def _compile_forward(model):
    """A compiled inference function ``x -> (zc, x_rec)`` for the active Keras backend, on
    inputs of the model's own compute dtype."""
    import keras

    backend = keras.backend.backend()

    def forward(x):
        out = model(x, training=False)
        return out["zc"], out["x_rec"]

    if backend == "tensorflow":
        import tensorflow as tf

        # The concrete function skips tf.function's per-call signature matching, which costs
        # about as much as the network itself on a 1,000-row micro-batch.
        concrete = tf.function(forward).get_concrete_function(
            tf.TensorSpec([None, model.n_features], model.compute_dtype)
        )
        return lambda x: concrete(tf.convert_to_tensor(x))
    if backend == "jax":
        import jax

        stateless = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])

        def jax_forward(x):
            # jax.jit compiles once per input shape, and a worker's micro-batches come in any
            # size up to max_batch_records: padded to the next power of two, a worker compiles
            # about ten shapes, each once, instead of one per new size (a stall each time).
            # Rows are scored independently, so the padding rows change no real row's score.
            n = len(x)
            size = _bucket(n)
            if size != n:
                x = np.concatenate([x, np.zeros((size - n, x.shape[1]), x.dtype)])
            out = stateless(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                x,
            )
            # sliced on the host: a jax slice would compile a program per row count again
            return np.asarray(out["zc"])[:n], np.asarray(out["x_rec"])[:n]

        return jax_forward
    if backend == "torch":
        import torch

        def torch_forward(x):
            with torch.no_grad():
                return forward(x)

        return torch_forward
    return forward


class NeuralGMMDetector(BaseDetector):
    """DAGMM-style detector: a (variational) autoencoder, two reconstruction features,
    an estimation network and a Gaussian mixture; ``score`` is the sample energy."""

    variational: bool = False
    score_batch_size = 65_536

    # hyperparameters: the subclasses' keyword-only __init__ arguments
    encoder_units: Sequence[int]
    latent_dim: int
    decoder_units: Sequence[int]
    estimation_units: Sequence[int]
    n_gmm: int
    activation: str
    w_recon: float
    w_energy: float
    w_cov_diag: float
    jitter: float
    learning_rate: float
    clipnorm: float | None
    epochs: int
    batch_size: int
    early_stopping_patience: int
    recon_features: Sequence[str]
    mixture_components: int
    seed: int

    # fitted (n_epochs_ is None in an artifact that did not record it)
    networks_: Networks  # the trained networks, as numpy layers
    history_: dict[str, list[float]]
    n_epochs_: int | None
    phi_: np.ndarray
    mu_: np.ndarray
    cov_: np.ndarray
    jitter_: tuple[float, ...]
    _energy: MixtureEnergy
    _keras: DAGMMNet | None = None  # float32: built for training, or on asking for model_
    _keras_forward: Callable[[np.ndarray], tuple[Any, Any]] | None = None  # use_keras()
    _sums: str = "exact"  # the numpy pass's layer sums (forward.SUMS): use_numpy()
    _repeated: str = "once"  # a batch's repeated rows: scored "once" or "each" time

    def _net_kwargs(self) -> dict[str, Any]:
        """DAGMMNet's arguments; the variational subclass overrides the VAE-only ones."""
        return dict(
            encoder_units=tuple(self.encoder_units),
            latent_dim=int(self.latent_dim),
            decoder_units=tuple(self.decoder_units),
            estimation_units=tuple(self.estimation_units),
            n_gmm=int(self.n_gmm),
            activation=self.activation,
            variational=False,
            n_samples=0,
            w_recon=self.w_recon,
            w_energy=self.w_energy,
            w_cov_diag=self.w_cov_diag,
            w_kl=0.0,
            recon_scale=1.0,
            jitter=self.jitter,
            recon_features=tuple(self.recon_features),
        )

    # -- fitting -----------------------------------------------------------------------
    def _build(self, n_features: int, dtype: str = "float32"):
        """The Keras model, its variables in ``dtype`` (float32 to train; the scoring model
        in float64, :func:`scoring_model`)."""
        import keras

        from stream_od.detector.dagmm import DAGMMNet

        keras.utils.set_random_seed(int(self.seed))
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype)  # the default of every layer the net builds
        try:
            net = DAGMMNet(n_features=n_features, seed=int(self.seed), **self._net_kwargs())
            net(np.zeros((2, n_features), dtype))
        finally:
            keras.config.set_dtype_policy(policy)
        return net

    def fit(
        self,
        X: np.ndarray,
        *,
        callbacks: Sequence[Any] = (),
        verbose: int = 0,
        validation_data: np.ndarray | None = None,
    ) -> NeuralGMMDetector:
        """Train the networks, then estimate the mixture over all of ``X`` in batches."""
        import keras

        X = check_matrix(X)  # float64: the mixture is fitted on scoring's codes
        self._check_mixture_components()
        if self.activation not in ACTIVATIONS:  # before training, not after it
            raise ValueError(
                f"activation {self.activation!r}: the trained network is scored in numpy, "
                f"which implements {sorted(ACTIVATIONS)}"
            )
        if X.shape[0] < self.batch_size:
            raise ValueError(f"need at least batch_size={self.batch_size} rows, got {X.shape[0]}")
        self.n_features_in_ = X.shape[1]
        self._keras, self._keras_forward = self._build(X.shape[1]), None
        model = self._keras
        opt = keras.optimizers.Adam(learning_rate=self.learning_rate, clipnorm=self.clipnorm)
        model.compile(optimizer=opt, jit_compile="auto")
        guard = _NonFiniteGuard()
        cbs = [guard, *callbacks]
        if self.early_stopping_patience:
            cbs.append(
                keras.callbacks.EarlyStopping(
                    monitor="loss",
                    patience=int(self.early_stopping_patience),
                    min_delta=1e-4,
                    restore_best_weights=True,
                )
            )
        hist = model.fit(
            X.astype(np.float32),
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            shuffle=True,
            verbose=verbose,
            callbacks=cbs,
        )
        if guard.bad_epoch is not None:
            raise NonFiniteLossError(
                f"training loss became non-finite in epoch {guard.bad_epoch + 1} even with "
                f"gradient clipping (clipnorm={self.clipnorm}); lower learning_rate or raise jitter"
            )
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.n_epochs_ = len(self.history_.get("loss", []))
        self.networks_ = _networks_of(model, self.activation, self.recon_features)
        self._fit_mixture(X)
        self.threshold_ = None
        return self

    def fit_mixture(self, X: np.ndarray) -> NeuralGMMDetector:
        """Re-estimate the scoring mixture on ``X`` for the trained networks, without
        retraining them (what ``fit`` does last).  Set ``mixture_components`` first to
        compare mixtures on one network; the threshold is cleared."""
        self._check_fitted()
        self._check_mixture_components()
        self._fit_mixture(check_matrix(X, n_features=self.n_features_in_))
        self.threshold_ = None
        return self

    def _check_mixture_components(self) -> None:
        k = self.mixture_components
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(
                f"mixture_components must be an integer >= 0 (0: the estimation "
                f"network's mixture), got {k!r}"
            )

    def _fit_mixture(self, X: np.ndarray) -> None:
        """The scoring mixture, over all of ``X`` (the network runs in bounded batches).

        ``mixture_components=0`` is the paper's: the estimation network's memberships
        weight the statistics (two passes, nothing but the sums in memory).  ``K > 0``
        refits a K-component mixture by EM on the training codes ``zc`` (an ``(n, D)``
        array, 5 floats a row): the estimation network has shaped the code space, and the
        density used for scoring is then the best K-component fit of it, not a
        two-component approximation that depends on how training ended.
        """
        if self.mixture_components:
            zc = self.latent(X)
            self.phi_, self.mu_, self.cov_ = fit_mixture_em(
                zc, int(self.mixture_components), seed=int(self.seed)
            )
        else:
            acc = None
            for pass_ in ("mean", "cov"):
                for start in range(0, X.shape[0], self.score_batch_size):
                    zc, _ = self._forward_np(X[start : start + self.score_batch_size])
                    gamma = self._gamma_np(zc)
                    if acc is None:
                        acc = MixtureAccumulator(gamma.shape[1], zc.shape[1])
                    (acc.add_mean if pass_ == "mean" else acc.add_cov)(zc, gamma)
                if acc is None:
                    raise ValueError("need at least one row to estimate the mixture")
                if pass_ == "mean":
                    acc.finish_mean()
                else:
                    self.phi_, self.mu_, self.cov_ = acc.result()
        self._energy = MixtureEnergy(self.phi_, self.mu_, self.cov_, jitter=self.jitter)
        self.jitter_ = self._energy.jitters

    def _gamma_np(self, zc: np.ndarray) -> np.ndarray:
        return self.networks_.gamma(zc)

    # -- scoring -----------------------------------------------------------------------
    def _forward_np(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._keras_forward is None:
            return self.networks_(X, self._sums)
        from keras import ops

        zc, x_rec = self._keras_forward(np.ascontiguousarray(X, dtype=DTYPE))
        return ops.convert_to_numpy(zc), ops.convert_to_numpy(x_rec)

    @property
    def scoring_backend(self) -> str:
        """``numpy``, or ``keras`` after :meth:`use_keras`."""
        return "numpy" if self._keras_forward is None else "keras"

    def use_keras(self) -> NeuralGMMDetector:
        """Score through Keras' compiled function (TensorFlow: on its default device, a GPU
        when it sees one) instead of numpy: the same networks in float64, the same scores to
        about 1e-12 (``benchmarks/scoring_paths.py``)."""
        self._check_fitted()
        self._keras_forward = _compile_forward(scoring_model(self))
        return self

    def use_numpy(self, sums: str = "exact", repeated: str = "once") -> NeuralGMMDetector:
        """Score in numpy, each layer's sums taken ``sums``-wise: ``exact`` (the same bits in
        any batch and offline) or ``blas`` (faster on wide inputs, the same to about 1e-13;
        :data:`stream_od.detector.forward.SUMS`).  ``repeated``: a batch's repeated rows are
        scored ``once`` (:mod:`stream_od.detector.distinct`; with exact sums, the same bits)
        or ``each`` time."""
        if sums not in SUMS:
            raise ValueError(f"sums must be one of {sorted(SUMS)}, got {sums!r}")
        if repeated not in REPEATED:
            raise ValueError(f"repeated must be one of {REPEATED}, got {repeated!r}")
        self._keras_forward, self._sums, self._repeated = None, sums, repeated
        if sums == "exact" and hasattr(self, "networks_"):
            self.networks_.check_sums()  # now, not in the first micro-batch
        return self

    @property
    def model_(self) -> DAGMMNet:
        """The Keras model of the trained networks, built from their weights when first asked
        for (training builds it; a loaded artifact does not need it to score)."""
        self._check_fitted()
        if self._keras is None:
            self._keras = self._build(self.n_features_in_)
            _set_keras_weights(self._keras, self.networks_)
        return self._keras

    def _distinct(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(rows to score, inverse)``: the batch's distinct rows and where each row's result
        is among theirs, or ``(X, None)`` to score it whole (on Keras, with ``repeated="each"``,
        or when few rows repeat)."""
        if self._keras_forward is not None or self._repeated == "each":
            return X, None
        rows = distinct_rows(X)
        if rows is None:
            return X, None
        first, inverse = rows
        return X[first], inverse

    def _score_batch(self, X: np.ndarray) -> np.ndarray:
        U, inverse = self._distinct(X)
        zc, _ = self._forward_np(U)
        return _spread(self._energy(zc), inverse)

    def _contributions_batch(self, X: np.ndarray) -> np.ndarray:
        U, inverse = self._distinct(X)
        _, x_rec = self._forward_np(U)
        return _spread(reconstruction_errors(U, x_rec), inverse)

    def _score_and_contributions_batch(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        U, inverse = self._distinct(X)
        zc, x_rec = self._forward_np(U)
        return (
            _spread(self._energy(zc), inverse),
            _spread(reconstruction_errors(U, x_rec), inverse),
        )

    def latent(self, X: np.ndarray) -> np.ndarray:
        """``zc``: the latent code followed by the reconstruction features."""
        X = self._check_input(X)
        return np.concatenate(
            [
                self._forward_np(X[s : s + self.score_batch_size])[0]
                for s in range(0, X.shape[0], self.score_batch_size)
            ]
        )

    def get_weights(self) -> list[np.ndarray]:
        return self.networks_.weights()

    # -- state -------------------------------------------------------------------------
    def __getstate__(self) -> DetectorState:
        state = super().__getstate__()
        if state.fitted is None:
            return state
        return state.adding(
            fitted={"n_epochs_": getattr(self, "n_epochs_", None)},
            arrays={"phi_": self.phi_, "mu_": self.mu_, "cov_": self.cov_}
            | self.networks_.arrays(),
        )

    def __setstate__(self, state: DetectorState) -> None:
        super().__setstate__(state)
        self._keras = self._keras_forward = None
        if state.fitted is None:
            return
        self.n_epochs_ = state.fitted.get("n_epochs_")
        self.phi_, self.mu_, self.cov_ = (
            np.asarray(state.arrays[k], np.float64) for k in ("phi_", "mu_", "cov_")
        )
        self._energy = MixtureEnergy(self.phi_, self.mu_, self.cov_, jitter=self.jitter)
        self.jitter_ = self._energy.jitters
        if WEIGHTS_FILE in state.files:  # written before the weights moved into detector.npz
            self._keras = self._keras_from_file(state.files[WEIGHTS_FILE])
            self.networks_ = _networks_of(self._keras, self.activation, self.recon_features)
        else:
            self.networks_ = Networks.from_arrays(
                state.arrays, activation=self.activation, recon_features=self.recon_features
            )

    def _keras_from_file(self, weights: bytes) -> DAGMMNet:
        try:
            import keras  # noqa: F401
        except ImportError:
            raise StreamODError(
                f"this artifact keeps its network weights in Keras' {WEIGHTS_FILE} (written "
                "by stream-od before 0.2), which only Keras can read: install the trainer "
                "(pip install 'stream-od[train]'), or retrain the model"
            ) from None
        model = self._build(self.n_features_in_)
        with tempfile.TemporaryDirectory(prefix="stream-od-weights-") as tmp:  # mode 0700
            path = os.path.join(tmp, WEIGHTS_FILE)  # Keras reads weights from a named file
            with open(path, "wb") as fh:
                fh.write(weights)
            model.load_weights(path)
        return model


def _spread(results: np.ndarray, inverse: np.ndarray | None) -> np.ndarray:
    """Per-row ``results`` of a batch's distinct rows, back on every row of the batch."""
    return results if inverse is None else results[inverse]


def reconstruction_errors(X: np.ndarray, x_rec: np.ndarray) -> np.ndarray:
    """``|X - x_rec|`` per feature in float64: a record's contributions to its score.

    Taken once and made absolute in place: converting ``x_rec`` (the numpy pass's transposed
    view) to a new array first, as before, made three arrays of the batch's size where one
    does; 0.147 → 0.094 µs a record at 1,000-record batches and 71 columns, which the whole
    score does not resolve (``benchmarks/contributions.py``).  The same values either way: the
    difference of two float64s, or of a float64 and a float32 widened exactly."""
    errors = np.subtract(X, x_rec, dtype=np.float64)
    return np.abs(errors, out=errors)


def scoring_model(detector: NeuralGMMDetector) -> DAGMMNet:
    """The trained networks as a float64 Keras model, for :meth:`~NeuralGMMDetector.use_keras`.

    The JAX backend computes in float32 whatever it is asked unless ``jax_enable_x64`` is on;
    it is switched on here (the training model's variables are float32 by their own policy).
    """
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    model = detector._build(detector.n_features_in_, np.dtype(DTYPE).name)
    _set_keras_weights(model, detector.networks_)
    return model


def _dense_layers(model) -> dict[str, list]:
    """The Keras Dense layers of a DAGMMNet by part, in :data:`forward.PARTS` order."""
    return {
        "encoder": list(model.encoder.layers),
        "z_mean": [model.z_mean],
        "z_log_var": [model.z_log_var] if getattr(model, "variational", False) else [],
        "decoder": list(model.decoder.layers),
        "estimation": list(model.estimation.layers),
    }


def _networks_of(model, activation: str, recon_features: Sequence[str]) -> Networks:
    """The numpy twin of a trained Keras DAGMMNet (its weights copied, float32)."""
    arrays = {}
    for part, layers in _dense_layers(model).items():
        for i, layer in enumerate(layers):
            kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
            arrays[f"net.{part}.{i}.kernel"], arrays[f"net.{part}.{i}.bias"] = kernel, bias
    return Networks.from_arrays(arrays, activation=activation, recon_features=recon_features)


def _set_keras_weights(model, networks: Networks) -> None:
    ours = networks.layers()
    for part, layers in _dense_layers(model).items():
        if len(layers) != len(ours[part]):
            raise ValueError(
                f"the {part} has {len(ours[part])} layers, the Keras model {len(layers)}"
            )
        for layer, dense in zip(layers, ours[part]):
            layer.set_weights([dense.kernel, dense.bias])


class _NonFiniteGuard:
    """Keras callback (duck-typed base added lazily) that stops on a non-finite loss."""

    #: the (0-based) epoch whose loss was not finite; None while training is sound
    bad_epoch: int | None

    def __new__(cls):
        import keras

        class Guard(keras.callbacks.Callback):
            bad_epoch = None

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.bad_epoch = getattr(self, "_epoch", 0)
                    self.model.stop_training = True

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

        return Guard()
