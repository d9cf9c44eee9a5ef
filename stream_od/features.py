"""From raw records to the standardized matrix a detector reads."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


class Standardizer:
    """Per-feature ``(x - mean_) / scale_``, fitted on normal training rows.

    ``scale_`` is the population standard deviation (``ddof=0``, as the reference
    protocol); a constant feature gets scale 1 so it maps to 0 instead of NaN.
    """

    def __init__(self) -> None:
        pass

    def fit(self, X: np.ndarray) -> "Standardizer":
        X = check_matrix(X)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0.0, scale, 1.0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = check_matrix(X, n_features=self.n_features_in_)
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_dict(self) -> dict[str, Any]:
        # Python's float repr round-trips exactly, so JSON keeps every bit.
        return {"mean": [float(v) for v in self.mean_], "scale": [float(v) for v in self.scale_]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Standardizer":
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise ValueError("standardizer mean and scale must be equal-length lists")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("standardizer mean/scale must be finite with scale > 0")
        self = cls()
        self.mean_, self.scale_, self.n_features_in_ = mean, scale, mean.shape[0]
        return self


def check_matrix(X: Any, *, n_features: int | None = None) -> np.ndarray:
    """A finite 2-D float64 array (a 1-D array is one row)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_rows, n_features), got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features, got {X.shape[1]}")
    if not np.isfinite(X).all():
        raise ValueError("input contains NaN or infinity")
    return X
