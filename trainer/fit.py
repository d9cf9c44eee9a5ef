"""Train a detector on a KDD-style file by the reference protocol and package it as an artifact.

The feature schema (``kdd99``: the 18 continuous traffic features; ``kdd99-full``: all 41
fields with the categoricals one-hot, as in the DAGMM paper; or any schema over KDD columns)
is fitted on the protocol's training rows and travels in the artifact.  A site's own traffic
(Zeek, Suricata) trains through :mod:`trainer.site` instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from stream_od.artifact import Artifact
from stream_od.detector import detector_class
from stream_od.features import Standardizer, fit_schema, unseen_shares
from stream_od.schema import DEFAULT_FEATURES, FeatureSchema, load_schema
from trainer.data import Batch, frame_matrix, frame_values, load_records, reference_protocol
from trainer.evaluate import classification_metrics

if TYPE_CHECKING:
    from stream_od.detector._neural import NeuralGMMDetector


@dataclass
class TrainConfig:
    data: str
    detector: str = "vaegmm"
    epochs: int | None = None  # None: the detector's default (50)
    batch_size: int | None = None  # None: the detector's default (1024)
    seed: int = 0  # network initialisation / shuffling seed
    n_train: int = 400_000  # normal rows drawn (seed 0) for training
    features: Sequence[str] = field(default_factory=lambda: DEFAULT_FEATURES)
    schema: str | None = None  # a schema name or TOML path; None: kdd99 (or features)
    threshold_percentile: float = 95.0
    ties: str = "include"
    early_stopping_patience: int = 0
    learning_rate: float | None = None
    mixture_components: int | None = None  # None: the detector's default


def detector_params(cfg: TrainConfig) -> dict[str, Any]:
    if cfg.detector == "mahalanobis":
        return {}
    params: dict[str, Any] = {"seed": int(cfg.seed)}
    for key in ("epochs", "batch_size", "learning_rate", "mixture_components"):
        if getattr(cfg, key) is not None:
            params[key] = getattr(cfg, key)
    if cfg.early_stopping_patience:
        params["early_stopping_patience"] = int(cfg.early_stopping_patience)
    return params


def _progress_callbacks(epochs: int, steps: int, after: str = "", file: IO[str] | None = None):
    """A tqdm bar over all training steps, as a Keras callback; ``after`` is printed when
    the networks are done (what ``fit`` still has to do).  ``file``: stderr."""
    import keras
    from tqdm.auto import tqdm

    out = file or sys.stderr

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            # On a terminal the bar redraws in place; in a log (make, CI, a container, a
            # Kubernetes Job) every redraw is a line, so there it is redrawn every 10 s at
            # most.  The epoch and the loss change without forcing a redraw: they show at the
            # next one (forced, they were a redraw per epoch, 177 on a Zeek day).
            self.bar = tqdm(
                total=epochs * steps,
                unit="step",
                desc="train",
                file=out,
                mininterval=0.1 if out.isatty() else 10.0,
            )

        def on_epoch_begin(self, epoch, logs=None):
            self.bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)

        def on_train_batch_end(self, batch, logs=None):
            if batch % 50 == 0 and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()
            if after:
                print(after, file=out, flush=True)

    return [Bar()]


def protocol_schema(cfg: TrainConfig) -> FeatureSchema:
    """The schema a reference-protocol run uses: ``cfg.schema``, else the features given
    (``kdd99`` when they are its 18)."""
    if cfg.schema:
        return load_schema(cfg.schema)
    if tuple(cfg.features) == DEFAULT_FEATURES:
        return load_schema("kdd99")
    return FeatureSchema.numeric(cfg.features)


def fit_detector(det, X_train, *, progress: bool = True) -> None:
    """``det.fit`` with a progress bar for the networks (and a line for the mixture fit)."""
    if det.kind == "mahalanobis":
        det.fit(X_train)
        return
    k = int(det.mixture_components)
    after = (
        f"fitting the {k}-component scoring mixture by EM over {X_train.shape[0]:,} training codes"
        if k
        else f"estimating the scoring mixture over {X_train.shape[0]:,} training rows"
    )
    cbs = (
        _progress_callbacks(int(det.epochs), -(-X_train.shape[0] // int(det.batch_size)), after)
        if progress
        else []
    )
    det.fit(X_train, callbacks=cbs)


def train(cfg: TrainConfig, *, progress: bool = True) -> Artifact:
    """Reference protocol: fit on ``n_train`` normal rows, threshold on the seed-0 batch,
    evaluate on the seed-1 test batch; the metrics travel in the artifact."""
    df = load_records(cfg.data)
    schema = protocol_schema(cfg)
    # The seeded sampler draws rows of a Batch; drawing row numbers picks the same rows as
    # drawing the features did, whatever the schema makes of them.
    index = Batch(
        X=np.arange(len(df), dtype=np.float64)[:, None],
        y=df["target"].to_numpy(np.int64),
        attack=df["attack"].to_numpy(object),
        feature_names=("row",),
    )
    proto = reference_protocol(index, n_train=cfg.n_train)
    rows = {
        part: getattr(proto, part).X[:, 0].astype(np.int64)
        for part in ("train", "threshold", "test")
    }
    schema = fit_schema(schema, frame_values(df.iloc[rows["train"]], schema))

    def matrix(part: str) -> np.ndarray:
        return frame_matrix(df.iloc[rows[part]], schema, f"{cfg.data} ({part} rows)")

    X_train_raw = matrix("train")
    std = Standardizer().fit(X_train_raw)
    det = detector_class(cfg.detector)(**detector_params(cfg))
    X_train = std.transform(X_train_raw)
    t0 = time.perf_counter()
    fit_detector(det, X_train, progress=progress)
    fit_seconds = time.perf_counter() - t0
    X_threshold = matrix("threshold")
    det.infer_threshold(std.transform(X_threshold), cfg.threshold_percentile, ties=cfg.ties)
    threshold = cast(float, det.threshold_)  # just set by infer_threshold
    test_scores = det.score(std.transform(matrix("test")))
    held_normal = X_threshold[proto.threshold.y == 0]  # the worker's baseline, as train_site's
    metrics = {
        "test_batch": classification_metrics(proto.test.y, test_scores, threshold),
        "fit_seconds": fit_seconds,
        "unseen_category_share": unseen_shares(held_normal, schema),
    }
    n_epochs = getattr(det, "n_epochs_", None)  # detectors trained in epochs only
    if n_epochs:
        metrics["epochs_run"] = n_epochs
        metrics["seconds_per_epoch"] = fit_seconds / n_epochs
        # those are the neural ones, and fit_detector has just recorded their history
        metrics["final_loss"] = cast("NeuralGMMDetector", det).history_["loss"][-1]
    training = {
        **asdict(cfg),
        "features": list(schema.feature_names),
        "schema": schema.name,
        "protocol": "kdd-reference",
        "detector_params": det.get_params(),
        "n_train_rows": int(X_train.shape[0]),
        "threshold_batch": {"seed": 0, "n": 1000, "perc_outlier": 5},
        "test_batch": {"seed": 1, "n": 1000, "perc_outlier": 10},
    }
    training["detector_params"] = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in training["detector_params"].items()
    }
    return Artifact(
        detector=det, standardizer=std, schema=schema, metrics=metrics, training=training
    )
