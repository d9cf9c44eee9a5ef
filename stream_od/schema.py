"""Feature schema: which raw columns a detector reads, and in which order.

The schema is data, not code: it travels inside every artifact, so a detector trained
on another column set (another dataset, a reduced KDD set) loads and scores the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

KDD_COLUMNS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes",
    "land", "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in",
    "num_compromised", "root_shell", "su_attempted", "num_root", "num_file_creations",
    "num_shells", "num_access_files", "num_outbound_cmds", "is_host_login",
    "is_guest_login", "count", "srv_count", "serror_rate", "srv_serror_rate",
    "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate",
    "srv_diff_host_rate", "dst_host_count", "dst_host_srv_count",
    "dst_host_same_srv_rate", "dst_host_diff_srv_rate", "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate", "dst_host_serror_rate", "dst_host_srv_serror_rate",
    "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
"""The 41 KDD Cup '99 feature names, in file order (the label is the 42nd field)."""

KDD_CATEGORICAL: tuple[str, ...] = ("protocol_type", "service", "flag")

DEFAULT_FEATURES: tuple[str, ...] = (
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
"""The 18 continuous traffic features Alibi Detect's KDD example keeps."""


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered, named numeric input columns of a detector."""

    names: tuple[str, ...] = DEFAULT_FEATURES

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        if not names:
            raise ValueError("FeatureSchema needs at least one feature name")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"FeatureSchema has duplicate feature names: {dupes}")
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSchema":
        if not isinstance(d, dict) or not isinstance(d.get("names"), list):
            raise ValueError("a feature schema is a JSON object {'names': [str, ...]}")
        return cls(names=tuple(d["names"]))

    @classmethod
    def of(cls, names: Iterable[str] | None) -> "FeatureSchema":
        return cls() if names is None else cls(names=tuple(names))
