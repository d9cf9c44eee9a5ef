"""Common detector API: ``fit`` / ``score`` / ``predict`` / ``infer_threshold``.

scikit-learn conventions (keyword-only hyperparameters stored as given, validation in
``fit``, learned attributes end in ``_``) with Alibi Detect's names and sign: ``score``
is the sample energy, higher means more anomalous.  Scoring never changes state.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, ClassVar

import numpy as np

from stream_od.detector.threshold import percentile_threshold
from stream_od.errors import StreamODError
from stream_od.features import check_matrix


class NotFittedError(StreamODError, RuntimeError):
    """The detector was used before ``fit`` (or before ``infer_threshold`` for predict)."""


class BaseDetector:
    kind: ClassVar[str] = ""
    #: rows per chunk when scoring, bounding memory for arbitrarily large inputs
    score_batch_size: ClassVar[int] = 65_536

    # -- fitted attributes (absent until fit / infer_threshold, or a load, sets them) ----
    n_features_in_: int
    threshold_: float | None
    threshold_percentile_: float | None
    threshold_ties_: str | None

    # -- parameters --------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting -----------------------------------------------------------------------
    def fit(self, X: np.ndarray) -> BaseDetector:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X) first")

    def _check_input(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return check_matrix(X, n_features=self.n_features_in_)

    # -- scoring -----------------------------------------------------------------------
    def score(self, X: np.ndarray) -> np.ndarray:
        """Sample energy, float64 of shape ``(n,)``; higher = more anomalous."""
        X = self._check_input(X)
        out = np.empty(X.shape[0], dtype=np.float64)
        step = self.score_batch_size
        for start in range(0, X.shape[0], step):
            out[start : start + step] = self._score_batch(X[start : start + step])
        if not np.isfinite(out).all():
            raise FloatingPointError(
                f"{type(self).__name__} produced non-finite scores; the fitted state is "
                "corrupt or the input is far outside the training range"
            )
        return out

    def _score_batch(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contribution to the anomaly, shape ``(n, n_features)``."""
        X = self._check_input(X)
        step = self.score_batch_size
        parts = [self._contributions_batch(X[s : s + step]) for s in range(0, X.shape[0], step)]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, self.n_features_in_))

    def _contributions_batch(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score_and_contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(score(X), contributions(X))`` in one pass: the stream worker's hot path, where
        a neural detector would otherwise run its network twice per micro-batch."""
        X = self._check_input(X)
        step = self.score_batch_size
        parts = [
            self._score_and_contributions_batch(X[s : s + step]) for s in range(0, X.shape[0], step)
        ]
        if not parts:
            return np.empty(0), np.zeros((0, self.n_features_in_))
        scores = np.concatenate([p[0] for p in parts]).astype(np.float64, copy=False)
        if not np.isfinite(scores).all():
            raise FloatingPointError(
                f"{type(self).__name__} produced non-finite scores; the fitted state is "
                "corrupt or the input is far outside the training range"
            )
        return scores, np.concatenate([p[1] for p in parts], axis=0)

    def _score_and_contributions_batch(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._score_batch(X), self._contributions_batch(X)

    # -- threshold ---------------------------------------------------------------------
    def infer_threshold(
        self, X: np.ndarray, percentile: float = 95.0, *, ties: str = "include"
    ) -> BaseDetector:
        """Set ``threshold_`` at the ``percentile`` of ``score(X)`` (see ``threshold``)."""
        self.threshold_ = percentile_threshold(self.score(X), percentile, ties=ties)
        self.threshold_percentile_ = float(percentile)
        self.threshold_ties_ = ties
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``score(X) > threshold_`` as a bool array."""
        threshold = getattr(self, "threshold_", None)
        if threshold is None:
            raise NotFittedError("no threshold: call infer_threshold(X, percentile) first")
        return self.score(X) > threshold

    # -- persistence (used by stream_od.artifact; JSON + arrays, no pickle) -------------
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able fitted scalars and the fitted arrays."""
        raise NotImplementedError

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _save_extra(self, directory: str | os.PathLike) -> list[str]:
        """Write extra files (network weights); return their names."""
        return []

    def _load_extra(self, directory: str | os.PathLike) -> None:
        pass

    def _common_state(self) -> dict[str, Any]:
        threshold = getattr(self, "threshold_", None)
        return {
            "n_features_in_": int(self.n_features_in_),
            "threshold_": None if threshold is None else float(threshold),
            "threshold_percentile_": getattr(self, "threshold_percentile_", None),
            "threshold_ties_": getattr(self, "threshold_ties_", None),
        }

    def _set_common_state(self, meta: dict[str, Any]) -> None:
        self.n_features_in_ = int(meta["n_features_in_"])
        self.threshold_ = meta.get("threshold_")
        self.threshold_percentile_ = meta.get("threshold_percentile_")
        self.threshold_ties_ = meta.get("threshold_ties_")
