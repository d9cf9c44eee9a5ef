"""The numpy inference pass against Keras' own: the same networks, the same outputs up to
float32 rounding against the training model, and the same scores (float64) and decisions
against the scoring model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stream_od.detector import AEGMM, VAEGMM, forward
from stream_od.detector.forward import ACTIVATIONS, Dense, Networks, reconstruction_features


def _data(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8)) * 2
    normal = np.concatenate([rng.normal(size=(700, 8)) * 0.4 + c for c in centres])
    return normal, rng.uniform(-6, 6, size=(200, 8))


@pytest.fixture(scope="module", params=["vaegmm", "aegmm", "vaegmm-tanh"])
def fitted(request):
    normal, _ = _data()
    cls = AEGMM if request.param == "aegmm" else VAEGMM
    extra = {"activation": "tanh"} if request.param.endswith("tanh") else {}
    return cls(epochs=3, batch_size=128, learning_rate=3e-3, seed=2, **extra).fit(normal)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_is_keras_own(name):
    x = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32) * 4
    ours = Dense(np.eye(5, dtype=np.float32), np.zeros(5, np.float32), name)(x)
    theirs = keras.ops.convert_to_numpy(keras.activations.get(name)(x))
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-7)


def test_the_numpy_pass_reproduces_keras_up_to_float32_rounding(fitted):
    normal, outliers = _data(1)
    X = np.r_[normal, outliers].astype(np.float32)
    out = fitted.model_(X, training=False)
    zc_k, rec_k = (keras.ops.convert_to_numpy(out[k]) for k in ("zc", "x_rec"))
    zc, rec = fitted.networks_(X)
    np.testing.assert_allclose(rec, rec_k, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(zc, zc_k, rtol=1e-4, atol=1e-5)
    gamma = keras.ops.convert_to_numpy(fitted.model_.estimation(zc, training=False))
    np.testing.assert_allclose(fitted.networks_.gamma(zc), gamma, rtol=1e-5, atol=1e-6)


def test_numpy_and_keras_scores_agree_and_decide_alike(fitted):
    normal, outliers = _data(2)
    X = np.r_[normal, outliers]
    fitted.infer_threshold(normal, 97)
    assert fitted.scoring_backend == "numpy"
    ours = fitted.score(X)
    try:
        theirs = fitted.use_keras().score(X)
        assert fitted.scoring_backend == "keras"
    finally:
        fitted.use_numpy()
    # both run in float64: what remains is the order of float64 sums (issue 15 asked 1e-6)
    rel = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
    assert rel.max() < 1e-9, rel.max()
    assert ((ours > fitted.threshold_) != (theirs > fitted.threshold_)).sum() == 0


def test_keras_scoring_model_is_float64_and_training_model_float32(fitted):
    from stream_od.detector._neural import scoring_model

    assert fitted.model_.encoder.layers[0].kernel.dtype == "float32"
    model = scoring_model(fitted)
    assert model.encoder.layers[0].kernel.dtype == "float64"
    out = model(np.zeros((3, fitted.n_features_in_)), training=False)
    assert keras.ops.convert_to_numpy(out["zc"]).dtype == np.float64


def test_reconstruction_features_match_the_training_graphs():
    from stream_od.detector.dagmm import reconstruction_features as keras_features

    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    x_rec = x + rng.normal(size=x.shape).astype(np.float32) * 0.1
    x[0] = x_rec[0] = 0  # the epsilon keeps both finite here
    names = ("relative_distance", "cosine", "log_distance")
    ours = reconstruction_features(x, x_rec, names)
    theirs = keras.ops.convert_to_numpy(keras_features(x, x_rec, names))
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_weights_round_trip_through_arrays(fitted):
    arrays = fitted.networks_.arrays()
    back = Networks.from_arrays(
        arrays, activation=fitted.activation, recon_features=fitted.recon_features
    )
    X = _data(4)[1]
    assert all(np.array_equal(a, b) for a, b in zip(back(X), fitted.networks_(X)))
    del arrays["net.z_mean.0.kernel"]
    with pytest.raises(ValueError, match="incomplete"):
        Networks.from_arrays(arrays, activation="relu", recon_features=("cosine",))


def test_an_activation_numpy_cannot_run_is_refused_by_name():
    with pytest.raises(ValueError, match="'selu' has no numpy implementation"):
        Dense(np.eye(2, dtype=np.float32), np.zeros(2, np.float32), "selu")


def test_a_records_score_does_not_depend_on_its_batch(fitted):
    """The worker scores micro-batches of any size; offline scoring takes the whole file.
    Each record must get the same bits either way (a BLAS product would not promise it)."""
    normal, outliers = _data(5)
    X = np.r_[normal[:400], outliers]
    whole = fitted.score(X)
    for size in (1, 2, 37, 256):
        parts = np.concatenate([fitted.score(X[s : s + size]) for s in range(0, len(X), size)])
        np.testing.assert_array_equal(parts, whole, err_msg=f"batches of {size}")


def _wide_layer(seed):
    rng = np.random.default_rng(seed)
    return Dense(rng.normal(size=(71, 60)), rng.normal(size=60), "linear"), rng


@pytest.mark.parametrize("n", [1, 2, 3, 127, 128, 129, 300, 530, 9000])
def test_a_layers_sums_are_its_products_added_input_after_input(n):
    """The exact pass's definition, bit for bit: :func:`forward.ordered_sums` adds each input's
    rounded products in turn, elementwise; the pass itself runs ``einsum``, which on the numpy
    this project locks must give those bits at every batch size (else scoring a wide schema
    is 2-4x slower: the fallback)."""
    layer, rng = _wide_layer(n)
    xt = np.ascontiguousarray(rng.normal(size=(71, n)) * 10.0 ** rng.integers(-3, 4, (71, 1)))
    assert forward.einsum_sums_in_order(71, 60)
    fast = forward.transposed(layer, xt)
    np.testing.assert_array_equal(
        fast, forward.ordered_sums(layer.kernel, xt) + layer.bias[:, None]
    )
    np.testing.assert_allclose(fast, layer.kernel.T @ xt + layer.bias[:, None], rtol=1e-9)


@pytest.fixture
def fresh_probe():
    """Both probes answer afresh in the test and for the tests after it."""
    probes = (forward.einsum_sums_in_order, forward.einsum_column_sums_in_order)
    for probe in probes:
        probe.cache_clear()
    yield
    for probe in probes:
        probe.cache_clear()


def test_a_numpy_whose_einsum_sums_otherwise_gets_the_ordered_sums(
    monkeypatch, caplog, fresh_probe
):
    """Where ``einsum`` adds in another order (here: the BLAS product stands in for it), the
    probe says so in the log and the layer falls back to the elementwise sums: the same bits
    as on any build, slower."""
    layer, rng = _wide_layer(1)
    xt = rng.normal(size=(71, 300)) * 10.0 ** rng.integers(-3, 4, (71, 1))

    def other_order(spec, a, b):  # the BLAS product; rows added last to first
        return a.T @ b if spec == "kj,ki->ji" else np.add.reduce((a * b)[::-1], axis=0)

    monkeypatch.setattr(np, "einsum", other_order)
    with caplog.at_level("WARNING", logger=forward.__name__):
        assert not forward.einsum_sums_in_order(71, 60)
        assert not forward.einsum_column_sums_in_order(71)
    assert "does not sum a (71, 60) layer input after input" in caplog.text
    assert "does not sum the column sums of 71 rows" in caplog.text
    np.testing.assert_array_equal(
        forward.transposed(layer, xt), forward.ordered_sums(layer.kernel, xt) + layer.bias[:, None]
    )
    np.testing.assert_array_equal(forward._dot_columns(xt, xt), forward._colsum(xt * xt))


@pytest.mark.parametrize("n", [1, 2, 3, 530])
def test_the_reconstruction_norms_add_their_products_row_after_row(n):
    rng = np.random.default_rng(n)
    a, b = (rng.normal(size=(81, n)) * 10.0 ** rng.integers(-3, 4, (81, 1)) for _ in "ab")
    assert forward.einsum_column_sums_in_order(81)
    np.testing.assert_array_equal(forward._dot_columns(a, b), forward._colsum(a * b))


def test_blas_sums_score_as_the_exact_pass_to_1e_12(fitted):
    """``STREAM_OD_SCORING_SUMS=blas``: the BLAS product in each layer, the same scores to
    rounding (not bit for bit), the same decisions at the threshold; ``exact`` restores the
    fixed-order pass and its bits."""
    normal, outliers = _data(7)
    X = np.r_[normal[:600], outliers]
    exact = fitted.score(X)
    try:
        fitted.use_numpy("blas")
        blas = fitted.score(X)
        codes = fitted.latent(X)
    finally:
        fitted.use_numpy()
    np.testing.assert_allclose(blas, exact, rtol=1e-12, atol=1e-12)
    assert ((blas > fitted.threshold_) == (exact > fitted.threshold_)).all()
    # it is the BLAS product that ran: its codes are the matrix products' own
    xt = forward._t(X)
    zt = (
        fitted.networks_.z_mean.kernel.T
        @ forward.stack(fitted.networks_.encoder, xt, forward.blas_transposed)
        + fitted.networks_.z_mean.bias[:, None]
    )
    np.testing.assert_array_equal(codes[:, : zt.shape[0]], zt.T)
    np.testing.assert_array_equal(fitted.score(X), exact)


def test_unknown_sums_are_refused(fitted):
    with pytest.raises(ValueError, match="sums must be one of"):
        fitted.use_numpy("pairwise")


def test_repeated_rows_are_scored_once_with_the_same_bits(fitted, monkeypatch):
    """A batch of a few distinct rows, repeated (a scan's SYNs): the networks see each distinct
    row once, and every row gets the bits it gets when each row is scored, or alone."""
    normal, outliers = _data(4)
    rows = np.r_[normal[:40], outliers[:10]]
    X = rows[np.random.default_rng(5).integers(0, len(rows), 600)]
    seen = []
    forward_np = fitted._forward_np
    monkeypatch.setattr(fitted, "_forward_np", lambda x: seen.append(len(x)) or forward_np(x))
    try:
        fitted.use_numpy(repeated="each")
        each = fitted.score_and_contributions(X)
        assert seen == [600]
        fitted.use_numpy()
        once = fitted.score_and_contributions(X)
        assert seen[1:] == [len(np.unique(X, axis=0))] == [50]
        for a, b in zip(once, each, strict=True):
            assert np.array_equal(a, b)
        assert np.array_equal(fitted.score(X), each[0])
        assert np.array_equal(fitted.contributions(X), each[1])
        alone = np.array([fitted.score(X[i : i + 1])[0] for i in range(0, 600, 37)])
        assert np.array_equal(alone, each[0][::37])
    finally:
        fitted.use_numpy()
    with pytest.raises(ValueError, match="repeated must be one of"):
        fitted.use_numpy(repeated="twice")
