"""Common detector API: ``fit`` / ``score`` / ``predict`` / ``infer_threshold``.

scikit-learn conventions (keyword-only hyperparameters stored as given, validation in
``fit``, learned attributes end in ``_``) with Alibi Detect's names and sign: ``score``
is the sample energy, higher means more anomalous.  Scoring never changes state.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
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
    def score(self, X: np.ndarray, *, check_finite: bool = True) -> np.ndarray:
        """Sample energy, float64 of shape ``(n,)``; higher = more anomalous.

        A score that is not finite raises ``FloatingPointError``; with ``check_finite=False``
        it is returned as it is (``inf``/``nan`` for that row only: rows are scored
        independently), for a caller that sets such records aside one by one (the worker
        dead-letters them)."""
        X = self._check_input(X)
        out = np.empty(X.shape[0], dtype=np.float64)
        step = self.score_batch_size
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, X.shape[0], step):
                out[start : start + step] = self._score_batch(X[start : start + step])
        if check_finite:
            self._raise_if_not_finite(out)
        return out

    def _raise_if_not_finite(self, scores: np.ndarray) -> None:
        if not np.isfinite(scores).all():
            raise FloatingPointError(
                f"{type(self).__name__} produced non-finite scores; the fitted state is "
                "corrupt or the input is far outside the training range"
            )

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

    def score_and_contributions(
        self, X: np.ndarray, *, check_finite: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(score(X), contributions(X))`` in one pass: the stream worker's hot path, where
        a neural detector would otherwise run its network twice per micro-batch.
        ``check_finite`` as for :meth:`score`."""
        X = self._check_input(X)
        step = self.score_batch_size
        with np.errstate(over="ignore", invalid="ignore"):
            parts = [
                self._score_and_contributions_batch(X[s : s + step])
                for s in range(0, X.shape[0], step)
            ]
        if not parts:
            return np.empty(0), np.zeros((0, self.n_features_in_))
        scores = np.concatenate([p[0] for p in parts]).astype(np.float64, copy=False)
        if check_finite:
            self._raise_if_not_finite(scores)
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

    # -- state: what a fitted detector is, as data (scikit-learn's pickling protocol) ------
    def __getstate__(self) -> DetectorState:
        """The detector as a :class:`DetectorState`; subclasses add their fitted arrays and
        files to the base's.  ``copy``/``pickle`` use it, and the artifact writes it out as
        JSON, arrays and named files (never as a pickle)."""
        params = self.get_params()
        if not hasattr(self, "n_features_in_"):
            return DetectorState(self.kind, params)
        threshold = getattr(self, "threshold_", None)
        fitted = {
            "n_features_in_": int(self.n_features_in_),
            "threshold_": None if threshold is None else float(threshold),
            "threshold_percentile_": getattr(self, "threshold_percentile_", None),
            "threshold_ties_": getattr(self, "threshold_ties_", None),
        }
        return DetectorState(self.kind, params, fitted)

    def __setstate__(self, state: DetectorState) -> None:
        """Become the detector ``state`` describes; subclasses restore their own part after
        calling this.  Raises ``ValueError`` for a state of another kind or a bad shape."""
        if state.kind != self.kind:
            raise ValueError(f"a {state.kind!r} state cannot restore a {self.kind!r} detector")
        unknown = set(state.params) - set(self._param_names())
        if unknown:
            raise ValueError(f"unknown {self.kind} parameters: {sorted(unknown)}")
        for name, value in state.params.items():
            setattr(self, name, value)
        if state.fitted is None:
            return
        self.n_features_in_ = int(state.fitted["n_features_in_"])
        self.threshold_ = state.fitted.get("threshold_")
        self.threshold_percentile_ = state.fitted.get("threshold_percentile_")
        self.threshold_ties_ = state.fitted.get("threshold_ties_")


@dataclass(frozen=True)
class DetectorState:
    """A detector as plain data: what ``__getstate__`` returns and ``__setstate__`` takes.

    ``params`` are the constructor's keyword arguments; ``fitted`` the JSON-able fitted
    scalars (None before ``fit``); ``arrays`` the fitted arrays; ``files`` any other fitted
    content by file name (a network's weights).  The artifact stores them as
    ``detector.json``, ``detector.npz`` and the named files.
    """

    kind: str
    params: dict[str, Any]
    fitted: dict[str, Any] | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)

    def adding(
        self,
        fitted: Mapping[str, Any] = MappingProxyType({}),
        arrays: Mapping[str, np.ndarray] = MappingProxyType({}),
        files: Mapping[str, bytes] = MappingProxyType({}),
    ) -> DetectorState:
        """This state with a subclass's fitted scalars, arrays and files added."""
        return replace(
            self,
            fitted={**(self.fitted or {}), **fitted},
            arrays={**self.arrays, **arrays},
            files={**self.files, **files},
        )
