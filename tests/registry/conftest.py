"""Small synthetic artifacts and keys for the registry's tests (no KDD, no training time)."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_od.artifact import Artifact
from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from stream_od.registry.signing import Trust
from stream_od.schema import FeatureSchema

KEY = b"test-signing-key-0123456789"


@pytest.fixture
def make_artifact(tmp_path):
    """``make_artifact(seed=0, names=("a", "b", "c"), created_at=None)`` -> path of a saved
    artifact (``created_at``: ``"2026-01-01T00:00:00Z"``-style, for the rollback order)."""
    count = 0

    def make(seed: int = 0, names=("a", "b", "c"), created_at: str | None = None):
        nonlocal count
        count += 1
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(300, len(names))) * (1 + seed)
        st = Standardizer().fit(X)
        det = Mahalanobis().fit(st.transform(X)).infer_threshold(st.transform(X), 95)
        art = Artifact(
            detector=det,
            standardizer=st,
            schema=FeatureSchema.numeric(tuple(names)),
            version=f"v{seed}-{count}",
            created_at=created_at,
        )
        return art.save(tmp_path / f"art-{count}")

    return make


@pytest.fixture(scope="session")
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def trust(private_key) -> Trust:
    """What a worker holding only the public key requires."""
    return Trust(public_key=private_key.public_key())


def created(day: int) -> str:
    """A ``created_at`` value: 2026-01-<day>, so versions have a known order."""
    return f"2026-01-{day:02d}T00:00:00Z"
