"""A trained detector on disk: a directory of JSON and array files plus a manifest.

Layout (no pickle anywhere; arrays load with ``allow_pickle=False``)::

    artifact.json       version, detector kind, the fitted feature schema (fields, kinds,
                        categorical vocabularies), threshold, metrics, training config,
                        library versions and the training CPU's vector instruction set
    standardizer.json   per-feature mean and scale
    detector.json       detector hyperparameters and fitted scalars
    detector.npz        fitted arrays (mixture parameters, covariance, ...)
                        (the neural detectors' network weights among them, ``net.*``)
    model.weights.h5    network weights in Keras' format: artifacts written before the
                        weights moved into detector.npz (loading these needs Keras)
    manifest.json       sha256 of every other file

``Artifact.load`` verifies every checksum before reading anything else.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import pathlib
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np

from stream_od.detector.base import DetectorState
from stream_od.detector.device import Placement, place
from stream_od.errors import ArtifactError
from stream_od.features import FeatureEncoder, Standardizer, check_matrix
from stream_od.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    REQUIRED,
    ManifestError,
    manifest_bytes,
    read_listed,
    verify_manifest,
)
from stream_od.schema import FeatureSchema, SchemaError

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "Artifact", "ArtifactError"]


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    # Any: mypy matches a ** mapping against savez's allow_pickle flag too
    named: dict[str, Any] = {k: np.ascontiguousarray(v) for k, v in sorted(arrays.items())}
    np.savez(buf, **named)
    return buf.getvalue()


def library_versions() -> dict[str, str]:
    """What decides the trained bits besides the data, config and seed: the libraries'
    versions, and the CPU's vector instruction set with the oneDNN settings that cap it.
    TensorFlow's CPU kernels (oneDNN) choose their code by the instruction set, so the same
    training command gives other networks on another kind of machine (docs/zeek-results.md);
    recorded so that a retrain that differs can be told apart from one that went wrong."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "machine": platform.machine()}
    isa = cpu_vector_isa()
    if isa:
        out["cpu_isa"] = isa
    for name in ("stream-od", "numpy", "keras", "tensorflow", "jax", "torch", "scikit-learn"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    for env in ("KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA"):
        value = os.environ.get(env)
        if value:
            out["keras_backend" if env == "KERAS_BACKEND" else env] = value
    return out


# the x86 extensions oneDNN dispatches on, best first (Linux /proc/cpuinfo flag names)
_ISA_FLAGS = (("amx_tile", "avx512+amx"), ("avx512f", "avx512"), ("avx2", "avx2"))


def cpu_vector_isa(cpuinfo: str | None = None) -> str | None:
    """The best of AMX, AVX-512 and AVX2 this x86 CPU has (``"sse"`` for none of them), from
    ``/proc/cpuinfo``; None where that cannot be read (not Linux: ``machine`` says enough)."""
    if cpuinfo is None:
        try:
            cpuinfo = pathlib.Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    if not flags:
        return None
    return next((name for flag, name in _ISA_FLAGS if flag in flags), "sse")


class Artifact:
    """A fitted detector with its standardizer, schema, threshold and metadata.

    ``score``/``predict``/``contributions`` take the *encoded, unstandardized* matrix in
    ``feature_names`` order (what :meth:`encode_records` or the worker's decoder produce).
    """

    def __init__(
        self,
        *,
        detector,
        standardizer: Standardizer,
        schema: FeatureSchema,
        version: str | None = None,
        metrics: dict | None = None,
        training: dict | None = None,
        created_at: str | None = None,
        libraries: dict | None = None,
    ) -> None:
        detector._check_fitted()
        if not schema.fitted:
            raise ArtifactError(
                f"schema {schema.name!r} is not fitted (categorical "
                "vocabularies missing): fit it on the training records"
            )
        if getattr(detector, "threshold_", None) is None:
            raise ArtifactError("the detector has no threshold: call infer_threshold first")
        if len(schema) != detector.n_features_in_ or standardizer.n_features_in_ != len(schema):
            raise ArtifactError(
                f"schema has {len(schema)} features but the detector/standardizer expect "
                f"{detector.n_features_in_}/{standardizer.n_features_in_}"
            )
        self.detector = detector
        self.standardizer = standardizer
        self.schema = schema
        self.metrics = dict(metrics or {})
        self.training = dict(training or {})
        now = _dt.datetime.now(_dt.UTC)
        self.created_at = created_at or now.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.libraries = libraries or library_versions()
        if version is None:
            h = hashlib.sha256()
            state = detector.__getstate__()  # fitted arrays, network weights included
            for name, values in sorted(state.arrays.items()):
                h.update(name.encode() + np.ascontiguousarray(values).tobytes())
            for name, data in sorted(state.files.items()):
                h.update(name.encode() + data)
            digest = h.hexdigest()
            version = f"{detector.kind}-{now.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
        self.version = version

    # -- the contract the stream worker uses -------------------------------------------
    @property
    def detector_kind(self) -> str:
        return self.detector.kind

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.schema.names

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold_)

    @property
    def encoder(self) -> FeatureEncoder:
        """Field values -> the matrix this artifact scores (the schema's one implementation)."""
        return FeatureEncoder(self.schema)

    def place_scoring(
        self, device: str = "auto", sums: str = "exact", repeated: str = "once"
    ) -> Placement:
        """Score on ``device`` (``auto``, ``cpu``, ``gpu``: :mod:`stream_od.detector.device`),
        a neural detector's numpy pass summing its layers ``sums``-wise (``exact``, ``blas``)
        and scoring a batch's repeated rows ``once`` or ``each`` time; returns where the
        detector now scores."""
        return place(self.detector, device, sums, repeated)

    def _standardize(self, X_raw: np.ndarray) -> np.ndarray:
        return self.standardizer.transform(check_matrix(X_raw, n_features=len(self.schema)))

    def score(self, X_raw: np.ndarray, *, check_finite: bool = True) -> np.ndarray:
        """Sample energy (float64, higher = more anomalous) of raw feature rows; a score that is
        not finite raises, unless ``check_finite`` is False (then it is returned for its row)."""
        with np.errstate(over="ignore", invalid="ignore"):
            X = self._standardize(X_raw)
        return self.detector.score(X, check_finite=check_finite)

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        """``score > threshold`` (ties are resolved when the threshold is inferred)."""
        return self.score(X_raw) > self.threshold

    def score_and_contributions(
        self, X_raw: np.ndarray, *, check_finite: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``score`` and ``contributions`` of the same rows from one pass of the model."""
        with np.errstate(over="ignore", invalid="ignore"):
            X = self._standardize(X_raw)
        return self.detector.score_and_contributions(X, check_finite=check_finite)

    def contributions(self, X_raw: np.ndarray) -> np.ndarray:
        """Per-feature contribution to the anomaly, ``(n, n_features)``; see the detector."""
        return self.detector.contributions(self._standardize(X_raw))

    # -- persistence -------------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        """The artifact as ``{file name: bytes}``, the manifest included."""
        state = self.detector.__getstate__()
        # format 1 unless the standardizer holds columns, which a format-1 reader would score
        format_version = FORMAT_VERSION if self.standardizer.held_.size else 1
        files = {
            "artifact.json": _json_bytes(
                {
                    "format": FORMAT,
                    "format_version": format_version,
                    "version": self.version,
                    "detector_kind": self.detector_kind,
                    "schema": self.schema.to_dict(),
                    "threshold": self.threshold,
                    "metrics": self.metrics,
                    "training": self.training,
                    "created_at": self.created_at,
                    "libraries": self.libraries,
                }
            ),
            "standardizer.json": _json_bytes(self.standardizer.to_dict()),
            "detector.json": _json_bytes({"params": state.params, "state": state.fitted}),
            "detector.npz": _npz_bytes(state.arrays),
        }
        for name, data in state.files.items():
            if name in files or name == MANIFEST:
                raise ArtifactError(f"the detector's file {name!r} would overwrite the artifact's")
            files[name] = data
        files[MANIFEST] = manifest_bytes(files, self.version, format_version)
        return files

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write the artifact into directory ``path`` (created; must be empty or absent)."""
        root = pathlib.Path(path)
        if root.exists() and any(root.iterdir()):
            raise ArtifactError(f"{root} is not empty; choose a new directory per artifact")
        root.mkdir(parents=True, exist_ok=True)
        files = self.to_files()
        manifest = files.pop(MANIFEST)
        for name, data in files.items():
            (root / name).write_bytes(data)
        (root / MANIFEST).write_bytes(manifest)  # last: a directory without it is incomplete
        return root

    @classmethod
    def load(cls, path: str | os.PathLike) -> Artifact:
        """The artifact in directory ``path``, after every sum in its manifest checks out."""
        root = pathlib.Path(path)
        if not root.is_dir():
            raise ArtifactError(f"artifact directory not found: {root}")
        return cls.from_files(read_listed(root), str(root))

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], where: str) -> Artifact:
        """The artifact in ``files`` (name -> bytes, as :meth:`to_files` writes them), parsed
        only after :func:`~stream_od.manifest.verify_manifest` passes; ``where`` names it in
        errors."""
        verified = verify_manifest(files, where)
        listed = verified.files
        try:
            info = json.loads(listed["artifact.json"])
            if info["version"] != verified.version:
                raise ManifestError(
                    f"{where}: artifact.json says {info['version']}, the manifest "
                    f"{verified.version}"
                )
            try:
                schema = FeatureSchema.from_dict(info["schema"])
            except SchemaError as e:
                raise ArtifactError(f"{where}: its feature schema is not valid: {e}") from None
            standardizer = Standardizer.from_dict(json.loads(listed["standardizer.json"]))
            det_json = json.loads(listed["detector.json"])
            from stream_od.detector import restore

            params = dict(det_json["params"])
            if info["detector_kind"] in ("vaegmm", "aegmm"):
                # Artifacts written before these were parameters used the paper's pair of
                # reconstruction features and the estimation network's mixture.
                params.setdefault("recon_features", ["relative_distance", "cosine"])
                params.setdefault("mixture_components", 0)
            with np.load(io.BytesIO(listed["detector.npz"]), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            extra = {n: b for n, b in listed.items() if n not in (*REQUIRED, MANIFEST)}
            state = DetectorState(info["detector_kind"], params, det_json["state"], arrays, extra)
            detector = restore(state)
            detector.threshold_ = float(info["threshold"])
            return cls(
                detector=detector,
                standardizer=standardizer,
                schema=schema,
                version=info["version"],
                metrics=info.get("metrics"),
                training=info.get("training"),
                created_at=info.get("created_at"),
                libraries=info.get("libraries"),
            )
        except ArtifactError:
            raise
        except Exception as e:
            raise ArtifactError(f"{where}: cannot load artifact ({type(e).__name__}: {e})") from e
