"""Load an artifact only after everything about it checks out.

Order: the signature (when a key is configured), then every sha256 in the manifest, then the
content (``Artifact.load``: JSON and ``np.load(allow_pickle=False)``, Keras weights only).
Each failure is a :class:`~stream_od.registry.errors.Refused` with a reason for the metric.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

from stream_od.artifact import MANIFEST, Artifact, ArtifactError
from stream_od.registry import signing
from stream_od.registry.errors import Refused


def _check_sums(root: pathlib.Path) -> None:
    try:
        files = dict(json.loads((root / MANIFEST).read_text())["files"])
    except FileNotFoundError:
        raise Refused("integrity", f"{root.name}: {MANIFEST} is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused("integrity", f"{root.name}: {MANIFEST} is not a valid manifest "
                                   f"({type(exc).__name__})") from None
    for name, digest in files.items():
        path = root / str(name)
        if pathlib.PurePath(str(name)).name != name or not path.is_file() or path.is_symlink():
            raise Refused("integrity", f"{root.name}: manifest lists {name!r}, which is not a "
                                       "file of the artifact")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise Refused("integrity", f"{root.name}: sha256 mismatch for {name}: the file was "
                                       "modified or corrupted after it was published")


def load_verified(directory: str | os.PathLike, key: bytes | None) -> Artifact:
    """The artifact in ``directory``, or :class:`Refused` saying why it must not be used."""
    root = pathlib.Path(directory)
    if key is not None:
        signing.verify(root, key)
    _check_sums(root)
    try:
        return Artifact.load(root)
    except ArtifactError as exc:
        raise Refused("malformed", f"{root.name}: {exc}") from None
