"""Scores -> alerts: what a SIEM receives for every record over the threshold.

:mod:`~stream_od.alerts.facts` says what an alert holds, :mod:`~stream_od.alerts.policy` builds
them from a scored batch, the format modules write them (``native``, ``ecs``, ``ocsf``).
"""

from stream_od.alerts.policy import (
    SEVERITIES,
    AlertPolicy,
    Origin,
    decode_key,
    dumps_bounded,
    json_safe,
    severities,
    top_features,
)

__all__ = [
    "SEVERITIES",
    "AlertPolicy",
    "Origin",
    "decode_key",
    "dumps_bounded",
    "json_safe",
    "severities",
    "top_features",
]
