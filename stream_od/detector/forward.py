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
features are sums taken in a fixed order too.  numpy's ``einsum`` takes these sums in one
compiled loop, in that order on the numpy this project locks; as numpy does not promise the
order, each shape is checked against the elementwise definition before ``einsum`` is trusted
with it (:func:`einsum_sums_in_order`).  (An operator may still take each layer's sums by the
BLAS product, ``STREAM_OD_SCORING_SUMS=blas``, :func:`blas_transposed`: faster again, not bit
for bit.)  The same holds for the mixture energy
(:class:`~stream_od.detector.gmm.MixtureEnergy`): the worker's scores equal offline scoring
bit for bit, whatever the micro-batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

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


#: columns per step of :func:`ordered_sums` (bounds its two ``(out, n)`` arrays)
ACCUMULATE_COLUMNS = 8192


def transposed(layer: Dense, xt: np.ndarray) -> np.ndarray:
    """``activation(kernel.T @ xt + bias)`` on columns (``xt``: ``(in, n)``, the result
    ``(out, n)``), each output summed over the inputs in order: every product
    ``kernel[k, j] * xt[k, i]`` is rounded, then added to the sum of the ones before it, input
    after input, the same order whatever ``n`` and whatever the record's place in the batch.

    numpy's ``einsum`` (without ``optimize``, so no BLAS) takes these sums in one compiled
    loop: inputs outermost, each input's products added to the running sums of all outputs
    and records, with one rounding per multiply and per add.  That is :func:`ordered_sums`'
    arithmetic, in one call instead of two numpy calls per input: the whole score 2.2-4.1x as
    fast on an 81-column Zeek model (``benchmarks/forward_sums.py``,
    ``results/forward_sums_einsum_zeek.json``).  numpy does not document the order,
    so it is checked, not assumed: :func:`einsum_sums_in_order` compares the two, bit for bit,
    on the layer's shape before ``einsum`` is trusted with it; where a numpy build sums
    otherwise, the layer takes :func:`ordered_sums` and the same bits, slower.
    """
    xt = np.ascontiguousarray(xt, DTYPE)
    if xt.shape[1] == 1:  # as two copies (see PROBE_COLUMNS)
        return transposed(layer, np.repeat(xt, 2, axis=1))[:, :1]
    if einsum_sums_in_order(*layer.kernel.shape):
        h = np.einsum("kj,ki->ji", layer.kernel, xt)
    else:
        h = ordered_sums(layer.kernel, xt)
    return _biased_activation(layer, h)


def ordered_sums(kernel: np.ndarray, xt: np.ndarray) -> np.ndarray:
    """``kernel.T @ xt`` by definition, two numpy calls per input: each sum starts as the first
    input's products and each next input's products are added to it, elementwise over
    outputs and records (so no numpy reduction chooses an order of its own)."""
    out = np.empty((kernel.shape[1], xt.shape[1]), DTYPE)
    for start in range(0, xt.shape[1], ACCUMULATE_COLUMNS):
        _accumulate(
            kernel,
            xt[:, start : start + ACCUMULATE_COLUMNS],
            out[:, start : start + ACCUMULATE_COLUMNS],
        )
    return out


@functools.cache
def einsum_sums_in_order(n_in: int, n_out: int) -> bool:
    """Whether this numpy's ``einsum("kj,ki->ji")`` gives :func:`ordered_sums`' bits on a
    ``(n_in, n_out)`` kernel (:func:`_einsum_agrees`); checked once a process per shape."""
    rng = np.random.default_rng(n_in * 1_000_003 + n_out)
    kernel = rng.normal(size=(n_in, n_out)) * 10.0 ** rng.integers(-6, 7, (n_in, 1))
    return _einsum_agrees(
        lambda xt: np.einsum("kj,ki->ji", kernel, xt),
        lambda xt: ordered_sums(kernel, xt),
        n_in,
        f"a ({n_in}, {n_out}) layer",
    )


@functools.cache
def einsum_column_sums_in_order(n_rows: int) -> bool:
    """Whether ``einsum("ki,ki->i")`` gives :func:`_colsum`'s bits on the products of two
    ``(n_rows, n)`` arrays: the reconstruction features' norms and dot products."""
    return _einsum_agrees(
        lambda xt: np.einsum("ki,ki->i", xt, _other(xt)),
        lambda xt: _colsum(xt * _other(xt)),
        n_rows,
        f"the column sums of {n_rows} rows",
    )


def _other(xt: np.ndarray) -> np.ndarray:
    """A second operand for the column sums' probe, contiguous as the real ones are (``einsum``
    picks its loop by the operands' strides)."""
    return np.roll(xt, 1, axis=0)


#: batch sizes :func:`_einsum_agrees` tries: a few records, a worker's micro-batch and sizes
#: either side of the SIMD widths and numpy's 8,192-element buffers.  Not one: with a single
#: column ``einsum`` drops the records' axis and sums along the inputs as a dot product, in
#: partial sums of its own, so a lone record is scored as two copies of itself
PROBE_COLUMNS = (2, 3, 5, 17, 64, 530, 8_193)
#: places in the probe's batch each size is tried at, so small sizes are tried on enough sums
PROBE_PLACES = 48


def _einsum_agrees(
    fast: Callable[[np.ndarray], np.ndarray],
    reference: Callable[[np.ndarray], np.ndarray],
    n_rows: int,
    what: str,
) -> bool:
    """Whether ``fast`` (an ``einsum``) gives ``reference``'s bits on records anywhere in a
    batch of any size of :data:`PROBE_COLUMNS`.  numpy does not document the order in which
    ``einsum`` adds; another order of the same sums (pairwise, several partial sums, a fused
    multiply-add) would differ in the last bits of some of these tens of thousands of sums
    of products spread over twelve orders of magnitude, so a build that sums otherwise fails
    this, and says so in the log.  Tens of milliseconds, once a process per shape."""
    rng = np.random.default_rng(n_rows)
    columns = max(PROBE_COLUMNS)
    xt = rng.normal(size=(n_rows, columns)) * 10.0 ** rng.integers(-6, 7, (n_rows, columns))
    whole = reference(xt)
    for n in PROBE_COLUMNS:
        for start in range(0, columns - n + 1, max(1, (columns - n) // PROBE_PLACES)):
            part = np.ascontiguousarray(xt[:, start : start + n])
            if not np.array_equal(fast(part), whole[..., start : start + n]):
                log.warning(
                    "numpy %s's einsum does not sum %s input after input as the scoring pass "
                    "defines (a batch of %d records); it takes the slower elementwise sums, "
                    "with the same scores",
                    np.__version__,
                    what,
                    n,
                )
                return False
    return True


def blas_transposed(layer: Dense, xt: np.ndarray) -> np.ndarray:
    """:func:`transposed` through the BLAS matrix product (``STREAM_OD_SCORING_SUMS=blas``):
    faster on wide inputs (81 Zeek columns at 530-row batches, the whole score: about 1.5 µs a
    record against 2.2 with the exact sums in ``einsum``, 6.9 elementwise; the worker side by
    side: ``benchmarks/stream_throughput.py --compare-scoring-sums``), but the BLAS sums a row's
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
    """``out = kernel.T @ xt``, summed input after input (:func:`ordered_sums`)."""
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


def _dot_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot product of each column of ``a`` with ``b``'s, products added row after row:
    :func:`_colsum` of ``a * b``, in one ``einsum`` loop where it gives those bits."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.shape[1] == 1:  # as two copies (see PROBE_COLUMNS)
        return _dot_columns(np.repeat(a, 2, axis=1), np.repeat(b, 2, axis=1))[:1]
    if einsum_column_sums_in_order(a.shape[0]):
        return np.einsum("ki,ki->i", a, b)
    return _colsum(a * b)


def reconstruction_features(x: np.ndarray, x_rec: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """numpy twin of :func:`stream_od.detector.dagmm.reconstruction_features` (same formulas,
    same epsilon) on rows, ``(n, len(names))`` in :data:`DTYPE`."""
    return transposed_features(_t(x), _t(x_rec), names).T


def transposed_features(xt: np.ndarray, rt: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """:func:`reconstruction_features` on columns: ``(d, n)`` inputs, ``(len(names), n)``."""
    eps = DTYPE(EPS)
    nx = np.sqrt(_dot_columns(xt, xt) + eps)
    nr = np.sqrt(_dot_columns(rt, rt) + eps)
    diff = xt - rt
    nd = np.sqrt(_dot_columns(diff, diff) + eps)
    columns = {
        "relative_distance": lambda: nd / nx,
        "cosine": lambda: _dot_columns(xt, rt) / (nx * nr),
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

    def check_sums(self) -> bool:
        """Run :func:`einsum_sums_in_order` on every layer's shape now (tens of milliseconds,
        once a process), so a worker's first micro-batch does not pay for it; whether every
        layer takes ``einsum``."""
        shapes = {d.kernel.shape for layers in self.layers().values() for d in layers}
        layers = [einsum_sums_in_order(*shape) for shape in sorted(shapes)]
        return all(layers) and einsum_column_sums_in_order(self.decoder[-1].kernel.shape[1])

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
