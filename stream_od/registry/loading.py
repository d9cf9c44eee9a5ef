"""Read an artifact's files once, and load an artifact from bytes that were verified.

Checking files by path and then loading them by path again leaves a window in which someone
who can write to the registry swaps a file between the two (seen: 8 of 3,000 loads).  So
:func:`read_artifact` reads every file exactly once, through one descriptor of the directory
and without following links, and everything after that (signature, sums, and the content,
parsed by ``Artifact.from_files``) works on those bytes, so what is parsed is what was
verified.
"""

from __future__ import annotations

import os
import pathlib
import stat

from stream_od.manifest import MANIFEST, ManifestError, listed_names
from stream_od.registry.errors import Refused
from stream_od.registry.pack import MAX_FILES, SAFE_NAME
from stream_od.registry.signing import SIGNATURE_FILES

# A local artifact directory (model_source=path) may be larger than a registry message; this
# bound only keeps a stray huge file from being read into memory.
MAX_DIRECTORY_BYTES = 256 * 1024 * 1024


class _Budget:
    """Bytes left to read; reading past it is a refusal, never an allocation."""

    def __init__(self, limit: int, where: str):
        self.left, self.limit, self.where = limit, limit, where

    def take(self, n: int, name: str) -> None:
        self.left -= n
        if self.left < 0:
            raise Refused(
                "malformed",
                f"{self.where}: over the {self.limit:,}-byte limit for an artifact (at {name})",
            )


def _read_one(dir_fd: int, name: str, budget: _Budget) -> bytes | None:
    """The bytes of ``name`` in the directory, or None when it does not exist.  Links, FIFOs,
    devices and directories are refused from their descriptor, before anything is read."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a link, refused by O_NOFOLLOW
        raise Refused(
            "malformed",
            f"{budget.where}: {name} cannot be opened as a plain file "
            f"({exc.strerror}); links are refused",
        ) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("malformed", f"{budget.where}: {name} is not a regular file")
        data = fh.read(budget.left + 1)
    budget.take(len(data), name)
    return data


def _listed_names(manifest: bytes, where: str) -> list[str]:
    """The file names a manifest lists (not yet trusted: only used to know what to read)."""
    try:
        names = listed_names(manifest, where)
    except ManifestError as exc:
        raise Refused("integrity", str(exc)) from None
    if len(names) >= MAX_FILES:
        raise Refused(
            "malformed", f"{where}: the manifest lists {len(names)} files (at most {MAX_FILES - 1})"
        )
    for name in names:
        if not SAFE_NAME.fullmatch(name) or name in (MANIFEST, *SIGNATURE_FILES):
            raise Refused(
                "integrity",
                f"{where}: manifest lists {name!r}, which is not a file of the artifact",
            )
    return names


def read_artifact(
    directory: str | os.PathLike, *, max_bytes: int = MAX_DIRECTORY_BYTES
) -> dict[str, bytes]:
    """``{name: bytes}`` of the manifest, the files it lists and the signatures present, each
    read once.  Other files in the directory are not read.  A listed file that is missing is
    left out (the sums check then refuses the version)."""
    root = pathlib.Path(directory)
    budget = _Budget(max_bytes, root.name)
    try:
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise Refused(
            "malformed", f"{root}: not a readable artifact directory ({exc.strerror})"
        ) from None
    try:
        manifest = _read_one(dir_fd, MANIFEST, budget)
        if manifest is None:
            raise Refused("integrity", f"{root.name}: {MANIFEST} is missing")
        files = {MANIFEST: manifest}
        for name in (*_listed_names(manifest, root.name), *SIGNATURE_FILES):
            data = _read_one(dir_fd, name, budget)
            if data is not None:
                files[name] = data
        return files
    finally:
        os.close(dir_fd)
