"""Signatures over an artifact's manifest, and what a worker requires of them (:class:`Trust`).

The manifest lists the sha256 of every other file and names the version, so a signature over
its exact bytes vouches for the whole artifact.  Signatures are separate files beside the
manifest and not listed in it:

- ``manifest.ed25519``: an Ed25519 signature (hex).  The publisher holds the private key and
  workers hold only the public key, so a worker, even a compromised one, cannot sign a model
  that other workers accept.  This is the scheme to use.
- ``manifest.sig``: an HMAC-SHA256 (hex) under a shared secret.  Weaker: every worker holds the
  secret, so anyone who takes one worker can sign models for all of them.  Kept for
  deployments that have not moved to Ed25519 yet; a publisher holding both keys writes both
  files, so workers can be moved one by one.

Keys never appear in a log line, a message or an artifact (:mod:`stream_od.registry.keys`
reads them).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stream_od.manifest import MANIFEST
from stream_od.registry.errors import Refused
from stream_od.registry.keys import (
    MIN_KEY_BYTES,
    PUBLIC_KEY_ENV,
    SIGNING_KEY_ENV,
    check_key,
    key_from_env,
)

SIGNATURE = "manifest.sig"  # HMAC-SHA256, hex
ED25519_SIGNATURE = "manifest.ed25519"  # Ed25519, hex
SIGNATURE_FILES = (SIGNATURE, ED25519_SIGNATURE)

__all__ = [
    "ED25519_SIGNATURE",
    "MIN_KEY_BYTES",
    "SIGNATURE",
    "SIGNATURE_FILES",
    "SIGNING_KEY_ENV",
    "Trust",
    "check_key",
    "key_from_env",
    "sign",
    "sign_ed25519",
    "signature",
]


def signature(manifest: bytes, key: bytes) -> str:
    """The HMAC-SHA256 (hex) of the manifest's bytes under ``key``."""
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def sign(directory: str | os.PathLike, key: bytes) -> pathlib.Path:
    """Write ``manifest.sig`` (HMAC) for the artifact in ``directory``, replacing an older one."""
    root = pathlib.Path(directory)
    path = root / SIGNATURE
    path.write_text(signature((root / MANIFEST).read_bytes(), key) + "\n")
    return path


def sign_ed25519(directory: str | os.PathLike, private_key: Ed25519PrivateKey) -> pathlib.Path:
    """Write ``manifest.ed25519`` for the artifact in ``directory``, replacing an older one."""
    root = pathlib.Path(directory)
    path = root / ED25519_SIGNATURE
    path.write_text(private_key.sign((root / MANIFEST).read_bytes()).hex() + "\n")
    return path


def _signature_bytes(files: Mapping[str, bytes], name: str, where: str) -> bytes:
    try:
        return bytes.fromhex(files[name].decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise Refused("bad_signature", f"{where}: {name} is not a hex signature") from None


@dataclass(frozen=True)
class Trust:
    """What a worker requires before it loads a version: an Ed25519 signature that verifies
    under ``public_key``, or (weaker) an HMAC under ``hmac_key``, or no signature at all when
    neither is set (sha256 sums only: corruption, not a deliberate publisher)."""

    public_key: Ed25519PublicKey | None = None
    hmac_key: bytes | None = None

    def __post_init__(self) -> None:
        if self.public_key is not None and self.hmac_key is not None:
            raise ValueError("configure an Ed25519 public key or an HMAC key, not both")
        if self.hmac_key is not None:
            check_key(self.hmac_key)

    @property
    def signed(self) -> bool:
        """True when this trust requires a signature."""
        return self.public_key is not None or self.hmac_key is not None

    @property
    def scheme(self) -> str:
        if self.public_key is not None:
            return "ed25519"
        return "hmac-sha256" if self.hmac_key is not None else "none"

    @classmethod
    def of(cls, key: Trust | bytes | None) -> Trust:
        """``key`` as a :class:`Trust`: bytes are an HMAC key (the older API), None is none."""
        if isinstance(key, Trust):
            return key
        return cls(hmac_key=key) if key is not None else cls()

    def verify(self, files: Mapping[str, bytes], where: str) -> None:
        """Raise :class:`Refused` unless the signature this trust requires is among ``files``
        (the bytes read once) and matches ``files[MANIFEST]``."""
        if self.public_key is not None:
            self._verify_ed25519(files, where)
        elif self.hmac_key is not None:
            self._verify_hmac(files, where)

    def _verify_ed25519(self, files: Mapping[str, bytes], where: str) -> None:
        assert self.public_key is not None
        if ED25519_SIGNATURE not in files:
            other = " (it has only an HMAC signature, manifest.sig)" if SIGNATURE in files else ""
            raise Refused(
                "unsigned",
                f"{where}: no {ED25519_SIGNATURE}{other}, and this worker "
                f"has a public key ({PUBLIC_KEY_ENV}): only artifacts "
                "signed with the publisher's Ed25519 private key are served",
            )
        manifest = self._manifest(files, where)
        try:
            self.public_key.verify(_signature_bytes(files, ED25519_SIGNATURE, where), manifest)
        except InvalidSignature:
            raise Refused(
                "bad_signature",
                f"{where}: {ED25519_SIGNATURE} does not verify under "
                "the configured public key (tampered, or signed with "
                "another private key)",
            ) from None

    def _verify_hmac(self, files: Mapping[str, bytes], where: str) -> None:
        assert self.hmac_key is not None
        if SIGNATURE not in files:
            raise Refused(
                "unsigned",
                f"{where}: no {SIGNATURE}, and an HMAC key is configured "
                f"({SIGNING_KEY_ENV}): only signed artifacts are served",
            )
        expected = signature(self._manifest(files, where), self.hmac_key)
        got = files[SIGNATURE].decode("ascii", errors="replace").strip()
        if not hmac.compare_digest(expected, got):
            raise Refused(
                "bad_signature",
                f"{where}: {SIGNATURE} does not match the manifest "
                "under the configured key (tampered, or signed with "
                "another key)",
            )

    @staticmethod
    def _manifest(files: Mapping[str, bytes], where: str) -> bytes:
        if MANIFEST not in files:
            raise Refused("integrity", f"{where}: {MANIFEST} is missing")
        return files[MANIFEST]


def trust_from_settings(settings) -> Trust:
    """The worker's :class:`Trust` from its settings (``model_public_key``, or the weaker
    ``model_signing_key``; their ``_file`` forms are read into them when settings load).
    Raises :class:`~stream_od.errors.ConfigError` naming the setting."""
    from stream_od.errors import ConfigError
    from stream_od.registry.keys import parse_public_key

    public, secret = getattr(settings, "model_public_key", None), settings.model_signing_key
    try:
        public_key = parse_public_key(public.encode(), PUBLIC_KEY_ENV) if public else None
        return Trust(
            public_key=public_key,
            hmac_key=secret.get_secret_value().encode() if secret is not None else None,
        )
    except ValueError as exc:
        raise ConfigError(f"model signing keys: {exc}") from None
