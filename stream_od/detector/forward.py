"""The networks' inference pass in numpy: how a worker scores without TensorFlow.

Scoring a DAGMM-style detector needs only the compression network (encoder, latent mean,
decoder) and the reconstruction features; the estimation network is needed to fit the paper's
two-component mixture.  All are stacks of dense layers, so inference is a few matrix products,
and the worker's install needs no TensorFlow, pandas or scikit-learn.  TensorFlow stays for
training and for scoring on a GPU (:mod:`stream_od.detector.device`).

**Scoring runs in float64** (the networks are trained in float32; their weights are exact in
float64).  In float32 every implementation rounds in its own order: this pass and Keras'
kernels differed by up to 3e-4 of the energy on ``corrected.gz``, because the narrowest
mixture components amplify the codes' last bits, and TensorFlow differs from itself by 1e-6
between batch sizes.  In float64 those orders leave the energy alone to about 1e-12, so the
numpy pass and Keras' (built in float64 for scoring, :func:`stream_od.detector._neural.
scoring_model`) give the same scores and the same decisions, and the threshold the trainer set
holds on either path (``benchmarks/scoring_paths.py``).

**A record's score does not depend on the batch it arrives in**, bit for bit.  A BLAS matrix
product does not promise that: OpenBLAS sums a row's products in an order that depends on the
row's place in the block and on the number of rows.  So each layer sums its inputs' products
in input order for every record (:func:`transposed`), and the norms of the reconstruction
features are sums taken in a fixed order too.  (An operator may trade this for speed:
``STREAM_OD_SCORING_SUMS=blas`` takes each layer's sums by the BLAS product,
:func:`blas_transposed`.)  The same holds for the mixture energy
(:class:`~stream_od.detector.gmm.MixtureEnergy`): the worker's scores equal offline scoring
bit for bit, whatever the micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: inside the square roots of the reconstruction features, so each stays finite at x == 0
EPS = 1e-12
RECON_FEATURES = ("relative_distance", "cosine", "log_distance")


def _relu(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0, out=h)


def _sigmoid(h: np.ndarray) -> np.ndarray:
    np.negative(h, out=h)
    np.exp(h, out=h)
    h += 1
    return np.reciprocal(h, out=h)


def _elu(h: np.ndarray) -> np.ndarray:
    neg = h < 0
    h[neg] = np.expm1(h[neg])
    return h


#: Keras activation names the numpy pass implements (with Keras' definitions)
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda h: h,
    "relu": _relu,
    "tanh": lambda h: np.tanh(h, out=h),
    "sigmoid": _sigmoid,
    "elu": _elu,
    "softmax": lambda h: h,  # over the units: done by transposed(), which knows the axis
}


#: the scoring precision (module docstring)
DTYPE = np.float64


@dataclass(frozen=True)
class Dense:
    """One dense layer: ``activation(x @ kernel + bias)``, computed in :data:`DTYPE`."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation {self.activation!r} has no numpy implementation; use one of "
                f"{sorted(ACTIVATIONS)}"
            )
        if self.kernel.ndim != 2 or self.bias.shape != (self.kernel.shape[1],):
            raise ValueError(f"a dense layer of shapes {self.kernel.shape} / {self.bias.shape}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x``: ``(n, in)`` rows; returns ``(n, out)``."""
        return transposed(self, _t(x)).T


#: columns (records) per step of :func:`transposed`'s ``(in, out, n)`` products, which it forms
#: below :data:`ACCUMULATE_FROM` columns (60 x 30 x 256 float64: 3.5 MiB)
COLUMNS = 256
#: from this many columns on, :func:`transposed` accumulates input after input instead: one
#: multiply and one add over ``(out, n)`` per input, two numpy calls each, which small batches
#: cannot amortise, but no ``(in, out, n)`` array to fill and read back.  Measured here
#: (``benchmarks/forward_sums.py``, ``benchmarks/results/forward_sums_*.json``): the VAEGMM's
#: scoring 1.15x (KDD) and 1.03x (Zeek; 1.28x in a run before) as fast at 1,000 rows, 1.5x at
#: 10,000, even at 300, and 0.72x at 128.  The worker's stage, where decoding weighs more,
#: moved by less than this machine's noise.  Both ways give the same bits.
ACCUMULATE_FROM = 512
#: columns per step of the accumulation (bounds its two ``(out, n)`` arrays)
ACCUMULATE_COLUMNS = 8192


def transposed(layer: Dense, xt: np.ndarray) -> np.ndarray:
    """``activation(kernel.T @ xt + bias)`` on columns (``xt``: ``(in, n)``, the result
    ``(out, n)``), each output summed over the inputs in order.

    Two ways, with the same rounding: every product ``kernel[k, j] * xt[k, i]`` is rounded,
    then added to the sum of the ones before it, input after input.  Small batches form the
    products as one ``(in, out, n)`` array and reduce it over its first axis, which numpy does
    input after input for every output, the same order whatever ``n``, as long as the other
    axes hold more than one element: a single column is scored as two copies of itself, where
    numpy would otherwise sum pairwise.  Larger ones accumulate explicitly (:func:`_accumulate`).
    """
    n = xt.shape[1]
    if n == 1:
        return transposed(layer, np.repeat(xt, 2, axis=1))[:, :1]
    h = np.empty((layer.kernel.shape[1], n), DTYPE)
    if n >= ACCUMULATE_FROM:
        for start in range(0, n, ACCUMULATE_COLUMNS):
            _accumulate(
                layer.kernel,
                xt[:, start : start + ACCUMULATE_COLUMNS],
                h[:, start : start + ACCUMULATE_COLUMNS],
            )
    else:
        products = layer.kernel[:, :, None]
        for start in range(0, n, COLUMNS):
            part = xt[:, start : start + COLUMNS]
            if part.shape[1] == 1:  # a last chunk of one column
                part = np.repeat(part, 2, axis=1)
                h[:, start:] = np.add.reduce(products * part[:, None, :], axis=0)[:, :1]
            else:
                np.add.reduce(
                    products * part[:, None, :], axis=0, out=h[:, start : start + COLUMNS]
                )
    return _biased_activation(layer, h)


def blas_transposed(layer: Dense, xt: np.ndarray) -> np.ndarray:
    """:func:`transposed` through the BLAS matrix product (``STREAM_OD_SCORING_SUMS=blas``):
    several times faster on wide inputs (81 Zeek columns: about 3 µs a record for the whole
    score against 11 at 530-row batches; the worker side by side:
    ``benchmarks/stream_throughput.py --compare-scoring-sums``), but the BLAS sums a row's
    products in an order that depends on the batch, so a record's score may differ from the
    exact pass's, and from itself in another batch, in its last bits (about 1e-13 of the
    energy)."""
    h = layer.kernel.T @ xt
    return _biased_activation(layer, h)


#: how a layer's sums are taken: ``exact`` (fixed order, the same bits in any batch) or
#: ``blas`` (the BLAS product: faster, the same to about 1e-13)
SUMS: dict[str, Callable[[Dense, np.ndarray], np.ndarray]] = {
    "exact": transposed,
    "blas": blas_transposed,
}


def _biased_activation(layer: Dense, h: np.ndarray) -> np.ndarray:
    """``activation(h + bias)`` in place on a layer's sums ``h`` (``(out, n)``)."""
    h += layer.bias[:, None]
    if layer.activation == "softmax":  # over the units: axis 0 here
        h -= h.max(axis=0)
        np.exp(h, out=h)
        h /= _colsum(h)
        return h
    return ACTIVATIONS[layer.activation](h)


def _accumulate(kernel: np.ndarray, xt: np.ndarray, out: np.ndarray) -> None:
    """``out = kernel.T @ xt``, summed input after input: ``out`` starts as the first input's
    products and each next input's products are added to it, as the reduction does."""
    np.multiply(kernel[0][:, None], xt[0], out=out)
    if len(kernel) > 1:
        products = np.empty_like(out)
        for k in range(1, len(kernel)):
            np.multiply(kernel[k][:, None], xt[k], out=products)
            out += products


def stack(
    layers: Sequence[Dense],
    xt: np.ndarray,
    layer_pass: Callable[[Dense, np.ndarray], np.ndarray] = transposed,
) -> np.ndarray:
    for layer in layers:
        xt = layer_pass(layer, xt)
    return xt


def _t(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, DTYPE).T)


def _colsum(a: np.ndarray) -> np.ndarray:
    """Column sums of ``(d, n)``, row after row, whatever ``n`` (numpy's own reduction would
    switch to pairwise sums when ``n == 1`` makes the axis contiguous)."""
    out = a[0].copy()
    for row in a[1:]:
        out += row
    return out


def reconstruction_features(x: np.ndarray, x_rec: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """numpy twin of :func:`stream_od.detector.dagmm.reconstruction_features` (same formulas,
    same epsilon) on rows, ``(n, len(names))`` in :data:`DTYPE`."""
    return transposed_features(_t(x), _t(x_rec), names).T


def transposed_features(xt: np.ndarray, rt: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """:func:`reconstruction_features` on columns: ``(d, n)`` inputs, ``(len(names), n)``."""
    eps = DTYPE(EPS)
    nx = np.sqrt(_colsum(xt * xt) + eps)
    nr = np.sqrt(_colsum(rt * rt) + eps)
    diff = xt - rt
    nd = np.sqrt(_colsum(diff * diff) + eps)
    columns = {
        "relative_distance": lambda: nd / nx,
        "cosine": lambda: _colsum(xt * rt) / (nx * nr),
        "log_distance": lambda: np.log(nd),
    }
    return np.stack([columns[n]() for n in names])


#: the sub-networks, in the order their weights are listed (``DAGMMNet``'s attributes)
PARTS = ("encoder", "z_mean", "z_log_var", "decoder", "estimation")


@dataclass(frozen=True)
class Networks:
    """A DAGMM's networks as numpy layers: ``__call__`` gives ``(zc, x_rec)``, as the Keras
    model does in inference (a variational encoder's posterior mean, no sampling)."""

    encoder: tuple[Dense, ...]
    z_mean: Dense
    decoder: tuple[Dense, ...]
    estimation: tuple[Dense, ...]
    recon_features: tuple[str, ...]
    z_log_var: Dense | None = None  # variational only; not used in inference

    def __call__(self, x: np.ndarray, sums: str = "exact") -> tuple[np.ndarray, np.ndarray]:
        """``sums``: a key of :data:`SUMS`; the reconstruction features' norms and the
        mixture energy after them are exact sums either way (they cost little)."""
        layer_pass = SUMS[sums]
        xt = _t(x)
        zt = layer_pass(self.z_mean, stack(self.encoder, xt, layer_pass))
        rt = stack(self.decoder, zt, layer_pass)
        recon = transposed_features(xt, rt, self.recon_features)
        return np.concatenate([zt, recon]).T, rt.T

    def gamma(self, zc: np.ndarray) -> np.ndarray:
        """The estimation network's memberships of codes ``zc``, float64 ``(n, n_gmm)``."""
        return stack(self.estimation, _t(zc)).T

    def layers(self) -> dict[str, tuple[Dense, ...]]:
        parts = {
            "encoder": self.encoder,
            "z_mean": (self.z_mean,),
            "z_log_var": () if self.z_log_var is None else (self.z_log_var,),
            "decoder": self.decoder,
            "estimation": self.estimation,
        }
        return {name: parts[name] for name in PARTS}

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights as named arrays: ``net.<part>.<i>.kernel`` / ``.bias``, float32 as
        trained (the cast to :data:`DTYPE` is exact both ways)."""
        out = {}
        for part, layers in self.layers().items():
            for i, layer in enumerate(layers):
                out[f"net.{part}.{i}.kernel"] = layer.kernel.astype(np.float32)
                out[f"net.{part}.{i}.bias"] = layer.bias.astype(np.float32)
        return out

    def weights(self) -> list[np.ndarray]:
        """Kernel and bias of every layer, in :data:`PARTS` order (Keras' order too)."""
        return [w for layers in self.layers().values() for d in layers for w in (d.kernel, d.bias)]

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        *,
        activation: str,
        recon_features: Sequence[str],
    ) -> Networks:
        """The networks from :meth:`arrays`' names.  Hidden layers use ``activation``; the
        latent layers and the decoder's output are linear, the estimation output softmax."""
        parts: dict[str, list[Dense]] = {}
        for part in PARTS:
            layers: list[tuple[np.ndarray, np.ndarray]] = []
            while f"net.{part}.{len(layers)}.kernel" in arrays:
                i = len(layers)
                layers.append(
                    (
                        np.asarray(arrays[f"net.{part}.{i}.kernel"], DTYPE),
                        np.asarray(arrays[f"net.{part}.{i}.bias"], DTYPE),
                    )
                )
            parts[part] = [
                Dense(k, b, _activation(part, i, len(layers), activation))
                for i, (k, b) in enumerate(layers)
            ]
        if len(parts["z_mean"]) != 1 or not parts["encoder"] or not parts["decoder"]:
            raise ValueError("the artifact's network weights are incomplete")
        return cls(
            encoder=tuple(parts["encoder"]),
            z_mean=parts["z_mean"][0],
            decoder=tuple(parts["decoder"]),
            estimation=tuple(parts["estimation"]),
            recon_features=tuple(recon_features),
            z_log_var=parts["z_log_var"][0] if parts["z_log_var"] else None,
        )


def _activation(part: str, i: int, n: int, hidden: str) -> str:
    if part in ("z_mean", "z_log_var"):
        return "linear"
    if i < n - 1 or part == "encoder":
        return hidden
    return "linear" if part == "decoder" else "softmax"
