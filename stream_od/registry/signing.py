"""HMAC-SHA256 signatures of an artifact's manifest.

The manifest lists the sha256 of every other file and names the version, so a signature over
its exact bytes vouches for the whole artifact.  The signature is a separate file,
``manifest.sig`` (hex, one line), beside the manifest and not listed in it.

The key comes from the environment only (:data:`SIGNING_KEY_ENV`); it is never written to a
file, a log line or a message.  Whoever holds it can publish models that workers will serve.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pathlib

from stream_od.artifact import MANIFEST
from stream_od.registry.errors import Refused

SIGNING_KEY_ENV = "STREAM_OD_MODEL_SIGNING_KEY"
SIGNATURE = "manifest.sig"
MIN_KEY_BYTES = 16


def check_key(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{SIGNING_KEY_ENV} is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
                         "random bytes (e.g. `openssl rand -hex 32`)")
    return key


def key_from_env(environ=os.environ) -> bytes | None:
    """The signing key from :data:`SIGNING_KEY_ENV`, or None when it is unset or empty."""
    value = environ.get(SIGNING_KEY_ENV)
    return check_key(value.encode()) if value else None


def signature(manifest: bytes, key: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def sign(directory: str | os.PathLike, key: bytes) -> pathlib.Path:
    """Write ``manifest.sig`` for the artifact in ``directory`` (replacing an older one)."""
    root = pathlib.Path(directory)
    path = root / SIGNATURE
    path.write_text(signature((root / MANIFEST).read_bytes(), key) + "\n")
    return path


def verify(directory: str | os.PathLike, key: bytes) -> None:
    """Raise :class:`Refused` unless ``manifest.sig`` is the manifest's HMAC under ``key``."""
    root = pathlib.Path(directory)
    sig_path = root / SIGNATURE
    if not sig_path.is_file():
        raise Refused("unsigned", f"{root.name}: no {SIGNATURE}, and a signing key is configured "
                                  f"({SIGNING_KEY_ENV}): only signed artifacts are served")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise Refused("integrity", f"{root.name}: {MANIFEST} is missing")
    expected = signature(manifest_path.read_bytes(), key)
    got = sig_path.read_text().strip()
    if not hmac.compare_digest(expected, got):
        raise Refused("bad_signature", f"{root.name}: {SIGNATURE} does not match the manifest "
                                       "under the configured key (tampered, or signed with "
                                       "another key)")
