"""Load an artifact only after everything about it checks out, from the bytes that were checked.

Order: the signature the worker's :class:`~stream_od.registry.signing.Trust` requires, then
every sha256 in the manifest, then the content (``Artifact.load``: JSON and
``np.load(allow_pickle=False)``, Keras weights only).  Each failure is a
:class:`~stream_od.registry.errors.Refused` with a reason for the metric.  Every step works on
one in-memory copy of the files (:mod:`stream_od.registry.loading`), so a file swapped on disk
after it was read can never be what is loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass

from stream_od.artifact import Artifact, ArtifactError
from stream_od.manifest import ManifestError, verify_manifest
from stream_od.registry.errors import Refused
from stream_od.registry.loading import MAX_DIRECTORY_BYTES, read_artifact
from stream_od.registry.signing import Trust

ARTIFACT_INFO = "artifact.json"


@dataclass(frozen=True)
class Verified:
    """An artifact's files that passed the signature and sha256 checks, and what the rollback
    check needs from them: the version and ``created_at``, both read from signed bytes."""

    version: str
    created_at: dt.datetime | None  # None when missing or unreadable: ranks as the oldest
    files: Mapping[str, bytes]  # the manifest and the files it lists, nothing else
    where: str


def created_at(info: bytes | None) -> dt.datetime | None:
    """``created_at`` of an ``artifact.json`` (UTC), or None when it has none that parses."""
    try:
        value = dt.datetime.fromisoformat(str(json.loads(info or b"")["created_at"]))
    except (ValueError, KeyError, TypeError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def verify_files(files: Mapping[str, bytes], key: Trust | bytes | None, where: str) -> Verified:
    """Signature (per ``key``), then the manifest's sums, over ``files`` as read once; raises
    :class:`Refused`."""
    Trust.of(key).verify(files, where)
    try:
        listed = verify_manifest(files, where)
    except ManifestError as exc:
        raise Refused("integrity", str(exc)) from None
    return Verified(
        listed.version, created_at(listed.files.get(ARTIFACT_INFO)), listed.files, where
    )


def build(verified: Verified) -> Artifact:
    """The artifact parsed from the verified bytes; :class:`Refused` ("malformed") for bad
    content, ("integrity") when ``artifact.json`` and the signed manifest disagree."""
    try:
        return Artifact.from_files(verified.files, verified.where)
    except ManifestError as exc:
        raise Refused("integrity", str(exc)) from None
    except ArtifactError as exc:
        raise Refused("malformed", str(exc)) from None


def load_verified(
    directory: str | os.PathLike, key: Trust | bytes | None, *, max_bytes: int = MAX_DIRECTORY_BYTES
) -> Artifact:
    """The artifact in ``directory``, or :class:`Refused` saying why it must not be used.
    ``key``: a :class:`Trust`, an HMAC key (bytes), or None for sums only."""
    root = pathlib.Path(directory)
    return build(verify_files(read_artifact(root, max_bytes=max_bytes), key, root.name))
