import numpy as np
import pytest

from stream_od.features import Standardizer


def test_standardizer_roundtrip_bitwise():
    X = np.random.default_rng(0).normal(size=(100, 3)) * [1, 10, 0]
    st = Standardizer().fit(X)
    assert st.scale_[2] == 1.0  # constant column
    st2 = Standardizer.from_dict(st.to_dict())
    assert np.array_equal(st.transform(X), st2.transform(X))
    np.testing.assert_allclose(st.transform(X)[:, :2].std(0), 1.0)


def test_standardizer_rejects_nan_and_wrong_width():
    st = Standardizer().fit(np.ones((3, 2)))
    with pytest.raises(ValueError):
        st.transform(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        st.transform(np.ones((1, 3)))
