"""Model signing keys: where they come from, what forms they take, and ``stream-od keygen``.

- ``STREAM_OD_MODEL_PRIVATE_KEY_FILE``: the publisher's Ed25519 private key (trainer, publish);
- ``STREAM_OD_MODEL_PUBLIC_KEY_FILE``: the matching public key, all that workers need;
- ``STREAM_OD_MODEL_SIGNING_KEY_FILE``: an HMAC-SHA256 secret shared by both sides (weaker).

Each also exists without ``_FILE``, holding the key itself in the variable.  The files are what
Docker and Kubernetes secrets mount.  An Ed25519 key is PEM (PKCS#8 ``PRIVATE KEY``,
``PUBLIC KEY``), 32 raw bytes, or those 32 bytes as 64 hex characters; an HMAC secret is its
text, trailing newline dropped, at least :data:`MIN_KEY_BYTES` bytes.  Every error names the
setting and never the key.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNING_KEY_ENV = "STREAM_OD_MODEL_SIGNING_KEY"
PUBLIC_KEY_ENV = "STREAM_OD_MODEL_PUBLIC_KEY"
PRIVATE_KEY_ENV = "STREAM_OD_MODEL_PRIVATE_KEY"
FILE_SUFFIX = "_FILE"
MIN_KEY_BYTES = 16
MAX_KEY_FILE_BYTES = 64 * 1024  # a PEM key is a few hundred bytes; anything larger is a mistake
PRIVATE_KEY_FILE = "model-signing.key"
PUBLIC_KEY_FILE = "model-signing.pub"


def check_key(key: bytes) -> bytes:
    """An HMAC key, if it is long enough to be a secret."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"{SIGNING_KEY_ENV} is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
            "random bytes (e.g. `openssl rand -hex 32`), or better an Ed25519 key "
            "pair from `stream-od keygen`"
        )
    return key


def read_key_file(path: str | os.PathLike, setting: str) -> bytes:
    """The bytes of a key file, with a message naming ``setting`` when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{setting}={path}: cannot read the key file ({exc.strerror})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{setting}={path}: over {MAX_KEY_FILE_BYTES:,} bytes, not a key file")
    return data


def hmac_key_from_file_bytes(data: bytes, setting: str) -> bytes:
    """A secret file as mounted (``echo KEY > file`` or ``--from-literal``): the trailing
    newline dropped, and text, so that the publisher and the workers derive the same key."""
    key = data.rstrip(b"\r\n")
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"{setting}: the HMAC key must be text (e.g. `openssl rand -hex 32`)"
        ) from None
    return check_key(key)


def hmac_key_file_text(path: str | os.PathLike, setting: str) -> str:
    """The HMAC key in the file ``path`` (the worker setting's ``_file`` form)."""
    return hmac_key_from_file_bytes(read_key_file(path, setting), setting).decode("utf-8")


def public_key_file_text(path: str | os.PathLike, setting: str) -> str:
    """The public key in the file ``path`` as PEM text (the worker setting's ``_file`` form)."""
    return public_pem(parse_public_key(read_key_file(path, setting), setting))


def _raw_or_hex(data: bytes) -> bytes | None:
    if len(data) == 32:
        return data
    text = data.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def parse_public_key(data: bytes, setting: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, 32 raw bytes or 64 hex characters."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data.strip())
        except ValueError:
            key = None
        if isinstance(key, Ed25519PublicKey):
            return key
    else:
        raw = _raw_or_hex(data)
        if raw is not None:
            return Ed25519PublicKey.from_public_bytes(raw)
    raise ValueError(
        f"{setting}: not an Ed25519 public key (expected PEM 'PUBLIC KEY', 32 raw "
        "bytes or 64 hex characters, as `stream-od keygen` writes)"
    )


def parse_private_key(data: bytes, setting: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from unencrypted PKCS#8 PEM, 32 raw bytes or 64 hex characters."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data.strip(), password=None)
        except (ValueError, TypeError):
            key = None
        if isinstance(key, Ed25519PrivateKey):
            return key
    else:
        raw = _raw_or_hex(data)
        if raw is not None:
            return Ed25519PrivateKey.from_private_bytes(raw)
    raise ValueError(
        f"{setting}: not an unencrypted Ed25519 private key (expected PEM "
        "'PRIVATE KEY', 32 raw bytes or 64 hex characters, as `stream-od keygen` "
        "writes)"
    )


def _from_env(environ: Mapping[str, str], name: str) -> tuple[bytes, str] | None:
    """``(bytes, setting)`` from ``NAME`` or ``NAME_FILE``; None when neither is set."""
    value, path = environ.get(name), environ.get(name + FILE_SUFFIX)
    if value and path:
        raise ValueError(f"both {name} and {name}{FILE_SUFFIX} are set: keep one")
    if path:
        return read_key_file(path, name + FILE_SUFFIX), name + FILE_SUFFIX
    return (value.encode(), name) if value else None


def key_from_env(environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The HMAC key from ``STREAM_OD_MODEL_SIGNING_KEY`` or its ``_FILE``, or None."""
    found = _from_env(environ, SIGNING_KEY_ENV)
    if found is None:
        return None
    data, setting = found
    return (
        hmac_key_from_file_bytes(data, setting)
        if setting.endswith(FILE_SUFFIX)
        else check_key(data)
    )


def private_key_from_env(environ: Mapping[str, str] = os.environ) -> Ed25519PrivateKey | None:
    """The publisher's Ed25519 key from ``STREAM_OD_MODEL_PRIVATE_KEY`` or its ``_FILE``."""
    found = _from_env(environ, PRIVATE_KEY_ENV)
    return parse_private_key(*found) if found is not None else None


def public_key_from_env(environ: Mapping[str, str] = os.environ) -> Ed25519PublicKey | None:
    """The workers' Ed25519 public key from ``STREAM_OD_MODEL_PUBLIC_KEY`` or its ``_FILE``."""
    found = _from_env(environ, PUBLIC_KEY_ENV)
    return parse_public_key(*found) if found is not None else None


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def generate(out: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """Write a new Ed25519 key pair into directory ``out`` (created 0700 if missing): the
    private key with mode 0600, created exclusively (an existing key is never overwritten, since
    that would orphan every model signed with it), and the public key with 0644."""
    root = pathlib.Path(out)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    private, public = root / PRIVATE_KEY_FILE, root / PUBLIC_KEY_FILE
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise FileExistsError(
                f"{path} exists: keygen never overwrites a key; choose another "
                "--out, or remove the old pair once no worker trusts it"
            )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(private, pem, 0o600)
    _write_new(public, public_pem(key.public_key()).encode(), 0o644)
    return private, public


def _write_new(path: pathlib.Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # the umask may have narrowed it; 0644 lets workers of another uid read
