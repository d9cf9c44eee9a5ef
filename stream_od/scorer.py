"""A model version with everything the worker derives from it, swapped whole between batches.

The worker knows a model only through this bundle: the artifact (:class:`Model`: its feature
schema, ``score_and_contributions``, threshold and version), the record decoder its schema
implies, the alert policy its threshold and score scale imply, and where it scores.  Building
one checks that this worker's settings can serve the model (a windows stage needs a schema with
windows; suppression needs the fields it keys on), so a model that cannot be served is refused
before it replaces the one in service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from stream_od.alerts import AlertPolicy
from stream_od.alerts.suppression import check_suppress_by
from stream_od.config import WorkerSettings
from stream_od.records import RecordDecoder
from stream_od.schema import FeatureSchema

if TYPE_CHECKING:
    from stream_od.detector.device import Placement

# the worker's logger: what this module says is about the model the worker serves, and its
# lines keep the name they had when this code was part of stream_od.worker
log = logging.getLogger("stream_od.worker")


class Model(Protocol):
    """What the worker needs of a model artifact (see ``stream_od.artifact.Artifact``)."""

    version: str
    detector_kind: str
    schema: FeatureSchema
    feature_names: tuple[str, ...]
    threshold: float
    metrics: dict

    def score_and_contributions(
        self, X_raw: np.ndarray, *, check_finite: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def place_scoring(self, device: str, sums: str, repeated: str) -> Placement: ...


@dataclass(frozen=True)
class Scorer:
    """One model version with everything derived from it; swapped whole between batches."""

    model: Model
    decoder: RecordDecoder
    policy: AlertPolicy
    placement: Placement  # where the model scores (numpy on cpu, keras on a GPU)

    @classmethod
    def build(cls, model: Model, settings: WorkerSettings) -> Scorer:
        """Raises ``ValueError`` when this worker cannot serve the model's feature schema."""
        windows = model.schema.windows
        stage = settings.windows_stage_topic is not None
        if stage and windows is None:
            raise ValueError(
                f"windows_stage_topic is set, but the model's schema "
                f"{model.schema.name!r} has no traffic windows"
            )
        roles = [r.name for r in windows.roles] if windows is not None else []
        unknown = sorted(set(settings.windows_stage_roles if stage else []) - set(roles))
        if unknown:
            raise ValueError(
                f"windows_stage_roles {unknown}: the model's schema has the window roles {roles}"
            )
        if settings.suppress_window_s > 0:
            check_suppress_by(settings.suppress_by, model.schema)
        decoder = RecordDecoder(
            model.schema,
            input_format=settings.input_format,
            max_record_bytes=settings.max_record_bytes,
            carried_roles=settings.windows_carried,
            skipped_roles=[
                r
                for r in roles
                if stage
                and r not in settings.windows_stage_roles
                and r not in settings.windows_carried
            ],
        )
        scale = float(model.metrics.get("score_scale") or 0.0)
        if not np.isfinite(scale) or scale <= 0:
            scale = max(abs(float(model.threshold)), 1.0)
        policy = AlertPolicy(
            feature_names=tuple(model.feature_names),
            threshold=float(model.threshold),
            score_scale=scale,
            model_version=model.version,
            detector=model.detector_kind,
            severity_margins=settings.severity_margins,
            top_k=settings.top_features,
            max_bytes=settings.max_output_bytes,
            schema=model.schema,
            alert_format=settings.alert_format,
        )
        placement = model.place_scoring(
            settings.scoring_device, settings.scoring_sums, settings.scoring_repeated_rows
        )
        _warn_without_select(model)
        return cls(model=model, decoder=decoder, policy=policy, placement=placement)


def _warn_without_select(model: Model) -> None:
    """An artifact trained before schemas had ``[select]`` keeps its schema as it was (the
    signature covers it), so it scores every record of the topic: an EVE ``stats`` event as a
    flow.  Say so when its built-in schema has a selection today."""
    from stream_od.schema import BUILTIN, load_schema

    schema = model.schema
    if schema.select is not None or schema.name not in BUILTIN:
        return
    today = load_schema(schema.name).select
    if today is not None:
        log.warning(
            "model %s: its schema %r has no [select] (trained before stream-od had it), so "
            "records of other kinds on the topic (%s not in %s%s) are scored, not skipped; "
            "retrain it to skip them (docs/schemas.md)",
            model.version,
            schema.name,
            today.field,
            list(today.values),
            ", or tagged" if today.tagged else "",
        )


def keep_windows(current: Scorer, new: Scorer) -> bool:
    """A new model with the same window definition goes on with the windows as they are (a
    model swap must not blank the traffic features); True when it does."""
    old, fresh = current.decoder.schema, new.decoder.schema
    if old.windows is not None and (old.windows, old.time_field) == (
        fresh.windows,
        fresh.time_field,
    ):
        new.decoder.window_streams = current.decoder.window_streams
        return True
    return False
