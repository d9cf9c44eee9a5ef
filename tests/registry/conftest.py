"""Small synthetic artifacts for the registry's tests (no KDD, no training time)."""

from __future__ import annotations

import numpy as np
import pytest

from stream_od.artifact import Artifact
from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from stream_od.schema import FeatureSchema

KEY = b"test-signing-key-0123456789"


@pytest.fixture
def make_artifact(tmp_path):
    """``make_artifact(seed=0, names=("a", "b", "c"))`` -> path of a saved artifact."""
    count = 0

    def make(seed: int = 0, names=("a", "b", "c")):
        nonlocal count
        count += 1
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(300, len(names))) * (1 + seed)
        st = Standardizer().fit(X)
        det = Mahalanobis().fit(st.transform(X)).infer_threshold(st.transform(X), 95)
        art = Artifact(detector=det, standardizer=st, schema=FeatureSchema.numeric(tuple(names)),
                       version=f"v{seed}-{count}")
        return art.save(tmp_path / f"art-{count}")

    return make
