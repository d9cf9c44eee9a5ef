"""A registry on a file system (a volume shared by the trainer and the workers)::

    <root>/versions/<version>/   one artifact per version, never modified once there
    <root>/LATEST                the version name workers should serve (one line)

Publishing copies the artifact into ``<root>/.staging-*`` and renames it into ``versions/`` in
one step, then replaces ``LATEST`` with ``os.replace``: a reader sees the old version or the
new one, never half of one.  ``LATEST`` is only a name: one with a path separator, ``..``, or
resolving outside ``versions/`` (a link) is refused.  Pointing ``LATEST`` at an older version
by hand is a rollback.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

from stream_od.manifest import MANIFEST
from stream_od.registry.errors import RegistryError
from stream_od.registry.pack import MAX_PACKED_BYTES, SAFE_NAME, pack

LATEST = "LATEST"
VERSIONS = "versions"


def check_version(version: str) -> str:
    if not SAFE_NAME.fullmatch(version or ""):
        raise RegistryError(
            f"unsafe version name {version!r}: expected [A-Za-z0-9._-], no "
            "leading dot, at most 128 characters"
        )
    return version


def manifest_version(directory: pathlib.Path) -> str:
    try:
        return check_version(str(json.loads((directory / MANIFEST).read_text())["version"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(
            f"{directory}: cannot read the version from {MANIFEST}: {exc}"
        ) from None


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryRegistry:
    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root)
        self.versions = self.root / VERSIONS

    def __repr__(self) -> str:
        return f"directory registry {self.root}"

    def publish(self, artifact_dir: str | os.PathLike, *, max_bytes: int = MAX_PACKED_BYTES) -> str:
        """Add the artifact as a new version and point ``LATEST`` at it; returns the version."""
        src = pathlib.Path(artifact_dir)
        version = manifest_version(src)
        pack(src, max_bytes=max_bytes)  # same flat-files and size rules as the topic registry
        self.versions.mkdir(parents=True, exist_ok=True)
        target = self.versions / version
        if target.exists():
            raise RegistryError(
                f"version {version} is already in {self.root}; versions are "
                "immutable (retrain, or point LATEST at it to roll back)"
            )
        staging = pathlib.Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            for path in sorted(src.iterdir()):
                shutil.copyfile(path, staging / path.name, follow_symlinks=False)
                with open(staging / path.name, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.chmod(staging, 0o755)
            os.rename(staging, target)  # atomic; fails if another publisher got there first
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise RegistryError(f"cannot publish {version} to {self.root}: {exc}") from exc
        _fsync_dir(self.versions)
        self.set_latest(version)
        return version

    def set_latest(self, version: str) -> None:
        check_version(version)
        if not (self.versions / version).is_dir():
            raise RegistryError(f"version {version} is not in {self.versions}")
        fd, tmp = tempfile.mkstemp(prefix=".latest-", dir=self.root)
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from workers running as another user
        with os.fdopen(fd, "w") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / LATEST)
        _fsync_dir(self.root)

    def latest(self) -> str | None:
        """The version ``LATEST`` names, or None when nothing is published yet."""
        try:
            text = (self.root / LATEST).read_text(encoding="utf-8", errors="strict")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{self.root / LATEST} is unreadable: {exc}") from None
        return text.strip()

    def path_of(self, version: str) -> pathlib.Path:
        """The directory of ``version``, refusing anything that is not inside ``versions/``."""
        try:
            check_version(version)
        except RegistryError as exc:
            raise RegistryError(f"{self.root / LATEST} names {version!r}: {exc}") from None
        path = self.versions / version
        base = self.versions.resolve()
        real = path.resolve()
        if path.is_symlink() or real.parent != base:
            raise RegistryError(f"{path} resolves outside {base}: refused")
        if not real.is_dir():
            raise RegistryError(
                f"{self.root / LATEST} names {version}, which is not in {self.versions}"
            )
        return real
