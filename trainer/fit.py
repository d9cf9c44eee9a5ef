"""Train a detector on a KDD-style file and package it as an artifact."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from stream_od.artifact import Artifact
from stream_od.detector import detector_class
from stream_od.features import Standardizer
from stream_od.schema import DEFAULT_FEATURES, FeatureSchema
from trainer.data import load_records, reference_protocol, to_batch
from trainer.evaluate import classification_metrics


@dataclass
class TrainConfig:
    data: str
    detector: str = "vaegmm"
    epochs: int | None = None           # None: the detector's default (50)
    batch_size: int | None = None       # None: the detector's default (1024)
    seed: int = 0                       # network initialisation / shuffling seed
    n_train: int = 400_000              # normal rows drawn (seed 0) for training
    features: Sequence[str] = field(default_factory=lambda: DEFAULT_FEATURES)
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


def _progress_callbacks(epochs: int, steps: int, after: str = ""):
    """A tqdm bar over all training steps, as a Keras callback; ``after`` is printed when
    the networks are done (what ``fit`` still has to do)."""
    import keras
    from tqdm.auto import tqdm

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs * steps, unit="step", desc="train")

        def on_epoch_begin(self, epoch, logs=None):
            self.bar.set_description(f"epoch {epoch + 1}/{epochs}")

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if batch % 50 == 0 and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}")

        def on_train_end(self, logs=None):
            self.bar.close()
            if after:
                print(after, file=sys.stderr, flush=True)
    return [Bar()]


def train(cfg: TrainConfig, *, progress: bool = True) -> Artifact:
    """Reference protocol: fit on ``n_train`` normal rows, threshold on the seed-0 batch,
    evaluate on the seed-1 test batch; the metrics travel in the artifact."""
    data = to_batch(load_records(cfg.data), cfg.features)
    proto = reference_protocol(data, n_train=cfg.n_train)
    std = Standardizer().fit(proto.train.X)
    det = detector_class(cfg.detector)(**detector_params(cfg))
    X_train = std.transform(proto.train.X)
    t0 = time.perf_counter()
    if cfg.detector == "mahalanobis":
        det.fit(X_train)
    else:
        k = int(det.mixture_components)
        after = (f"fitting the {k}-component scoring mixture by EM over {X_train.shape[0]:,} "
                 "training codes" if k else
                 f"estimating the scoring mixture over {X_train.shape[0]:,} training rows")
        cbs = _progress_callbacks(int(det.epochs), -(-X_train.shape[0] // int(det.batch_size)),
                                  after) if progress else []
        det.fit(X_train, callbacks=cbs)
    fit_seconds = time.perf_counter() - t0
    det.infer_threshold(std.transform(proto.threshold.X), cfg.threshold_percentile, ties=cfg.ties)
    test_scores = det.score(std.transform(proto.test.X))
    metrics = {"test_batch": classification_metrics(proto.test.y, test_scores, det.threshold_),
               "fit_seconds": fit_seconds}
    if getattr(det, "n_epochs_", None):
        metrics["epochs_run"] = det.n_epochs_
        metrics["seconds_per_epoch"] = fit_seconds / det.n_epochs_
        metrics["final_loss"] = det.history_["loss"][-1]
    training = {**asdict(cfg), "features": list(cfg.features),
                "detector_params": det.get_params(), "n_train_rows": int(X_train.shape[0]),
                "threshold_batch": {"seed": 0, "n": 1000, "perc_outlier": 5},
                "test_batch": {"seed": 1, "n": 1000, "perc_outlier": 10}}
    training["detector_params"] = {k: (list(v) if isinstance(v, tuple) else v)
                                   for k, v in training["detector_params"].items()}
    return Artifact(detector=det, standardizer=std, schema=FeatureSchema(names=tuple(cfg.features)),
                    metrics=metrics, training=training)

