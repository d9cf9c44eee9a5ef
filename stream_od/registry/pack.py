"""An artifact directory as one byte string (an uncompressed tar of its flat files), and back.

The packed form is what travels in a Kafka message, so it has a hard size limit,
:data:`MAX_PACKED_BYTES` (4 MiB: well under the broker's ``message.max.bytes`` of 10 MiB, and
a Mahalanobis artifact is ~10 KiB, a VAEGMM one a few hundred KiB).  :func:`pack` checks it
when publishing, :func:`unpack` before reading anything.

Unpacking trusts nothing in the archive: only regular files with plain flat names
(``[A-Za-z0-9._-]``, no path separators, no leading dot) are accepted, at most
:data:`MAX_FILES` of them, no duplicates; links, directories, devices and anything else are
refused.  The tar is not compressed, so the bytes written are bounded by the bytes received
(no decompression bomb), and files are written with exclusive creation into a fresh directory.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import tarfile

from stream_od.registry.errors import Refused

MAX_PACKED_BYTES = 4 * 1024 * 1024
MAX_FILES = 16
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def _check_name(name: str) -> None:
    if not SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise Refused("malformed", f"packed artifact holds {name!r}: only plain flat file names "
                                   "are allowed (no paths, no leading dot)")


def pack(directory: str | os.PathLike, *, max_bytes: int = MAX_PACKED_BYTES) -> bytes:
    """Tar the regular files of ``directory`` (sorted, fixed metadata: the same files give the
    same bytes).  Raises :class:`Refused` ("malformed") for subdirectories, links, unsafe
    names, or a result over ``max_bytes``."""
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"artifact directory not found: {root}")
    entries = sorted(root.iterdir())
    if len(entries) > MAX_FILES:
        raise Refused("malformed", f"{root} holds {len(entries)} entries (at most {MAX_FILES})")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in entries:
            _check_name(path.name)
            if path.is_symlink() or not path.is_file():
                raise Refused("malformed", f"{path} is not a regular file; an artifact is a flat "
                                           "directory of files")
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
            if buf.tell() > max_bytes:
                break
    packed = buf.getvalue()
    if len(packed) > max_bytes:
        raise Refused("malformed", f"packed artifact is {len(packed):,} bytes, over the "
                                   f"{max_bytes:,}-byte limit for a registry message")
    return packed


def unpack_files(data: bytes, *, max_bytes: int = MAX_PACKED_BYTES) -> dict[str, bytes]:
    """``{name: content}`` of a packed artifact, every entry checked (see the module doc)."""
    if len(data) > max_bytes:
        raise Refused("malformed", f"packed artifact is {len(data):,} bytes, over the "
                                   f"{max_bytes:,}-byte limit")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                _check_name(member.name)
                if not member.isreg():
                    raise Refused("malformed", f"packed artifact entry {member.name!r} is not a "
                                               "regular file (links and directories are refused)")
                if member.name in files:
                    raise Refused("malformed", f"packed artifact holds {member.name!r} twice")
                if len(files) >= MAX_FILES:
                    raise Refused("malformed", f"packed artifact holds more than {MAX_FILES} files")
                fh = tar.extractfile(member)
                content = fh.read(member.size + 1) if fh is not None else b""
                if len(content) != member.size:
                    raise Refused("malformed", f"packed artifact entry {member.name!r} is truncated")
                files[member.name] = content
    except tarfile.TarError as exc:
        raise Refused("malformed", f"not a packed artifact (tar): {exc}") from None
    if not files:
        raise Refused("malformed", "packed artifact is empty")
    return files


def unpack(data: bytes, directory: str | os.PathLike, *,
           max_bytes: int = MAX_PACKED_BYTES) -> pathlib.Path:
    """Write a packed artifact into ``directory`` (created; must not exist)."""
    files = unpack_files(data, max_bytes=max_bytes)
    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=False)
    for name, content in files.items():
        with open(root / name, "xb") as fh:  # exclusive: never follows or overwrites anything
            fh.write(content)
    return root
