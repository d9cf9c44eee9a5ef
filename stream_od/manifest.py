"""An artifact's manifest: the sha256 of every file, written once and checked by one function.

``manifest.json`` names the artifact format, the version and the sum of each file.  Everything
that reads an artifact (``Artifact.load`` from a directory, the registry from the bytes it
verified a signature over) goes through :func:`verify_manifest`, so there is one answer to
"is this a whole, unmodified artifact" and one wording of each way it is not.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass

from stream_od.errors import ArtifactError

FORMAT = "stream-od-artifact"
#: the newest format this code writes and reads.  2 (2026-12-07): the standardizer may hold
#: columns at their training value (``held``, a field no training record carried); a reader
#: of format 1 would score those columns and give other scores than the trainer's, so an
#: artifact that holds none is still written as 1, one that holds some as 2, which such a
#: reader refuses (a worker keeps the model it has, and says why)
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
#: the files every artifact has; a detector may add its own (network weights)
REQUIRED = ("artifact.json", "standardizer.json", "detector.json", "detector.npz")


class ManifestError(ArtifactError):
    """The manifest is missing or invalid, or a file does not match it: the artifact was
    modified, corrupted or copied in part."""


@dataclass(frozen=True)
class Listed:
    """The files a valid manifest lists, each matching its sum, and the manifest itself."""

    version: str
    files: Mapping[str, bytes]  # MANIFEST and the listed files, nothing else


def manifest_bytes(
    files: Mapping[str, bytes], version: str, format_version: int = FORMAT_VERSION
) -> bytes:
    """``manifest.json`` for these files (name -> content) of artifact ``version``."""
    doc = {
        "format": FORMAT,
        "format_version": format_version,
        "version": version,
        "files": {name: hashlib.sha256(files[name]).hexdigest() for name in sorted(files)},
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def listed_names(manifest: bytes, where: str) -> list[str]:
    """The file names ``manifest`` lists (unchecked beyond being a manifest)."""
    return list(_parse(manifest, where)["files"])


def read_listed(root: pathlib.Path) -> dict[str, bytes]:
    """The manifest of directory ``root`` and the files it lists, read once; a listed file
    that is absent is left out (:func:`verify_manifest` then names it)."""
    path = root / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"{path} is missing: not a stream-od artifact, or an incomplete copy; "
            "re-copy the whole directory"
        )
    files = {MANIFEST: path.read_bytes()}
    for name in listed_names(files[MANIFEST], str(root)):
        if pathlib.PurePath(name).name == name and (root / name).is_file():
            files[name] = (root / name).read_bytes()
    return files


def verify_manifest(files: Mapping[str, bytes], where: str) -> Listed:
    """Check ``files`` (name -> bytes, the manifest among them) against the manifest: its
    format, its version, that it lists every required file and only plain names, and that
    each listed file is present with its sha256.  Raises :class:`ManifestError`."""
    if MANIFEST not in files:
        raise ManifestError(f"{where}: {MANIFEST} is missing")
    manifest = _parse(files[MANIFEST], where)
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE_VERSIONS:
        raise ManifestError(
            f"{where}: unsupported artifact format "
            f"{manifest.get('format')!r} v{manifest.get('format_version')!r} (this stream-od "
            f"reads {FORMAT!r} v{', v'.join(map(str, READABLE_VERSIONS))}: a newer trainer "
            "wrote it, so upgrade the worker)"
        )
    version = manifest.get("version")
    if not isinstance(version, str) or not version:
        raise ManifestError(f"{where}: {MANIFEST} names no version")
    sums = manifest["files"]
    for required in REQUIRED:
        if required not in sums:
            raise ManifestError(f"{where}: {MANIFEST} does not list {required}")
    checked = {MANIFEST: files[MANIFEST]}
    for name, digest in sums.items():
        if pathlib.PurePath(name).name != name or name == MANIFEST:
            raise ManifestError(f"{where}: {MANIFEST} names a file outside the artifact: {name!r}")
        if name not in files:
            raise ManifestError(f"{where}: {name} is listed in {MANIFEST} but missing")
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise ManifestError(
                f"{where}: sha256 mismatch for {name}: the file was modified or corrupted; "
                "re-copy or retrain the artifact"
            )
        checked[name] = files[name]
    return Listed(version, checked)


def _parse(manifest: bytes, where: str) -> dict:
    try:
        doc = json.loads(manifest)
        if not isinstance(doc, dict) or not isinstance(doc["files"], dict):
            raise TypeError("not an object with a files object")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in doc["files"].items()):
            raise TypeError("files must map names to sha256 strings")
        return doc
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(
            f"{where}: {MANIFEST} is not a valid manifest ({type(exc).__name__}: {exc})"
        ) from None
