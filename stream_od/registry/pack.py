"""An artifact directory as one byte string (an uncompressed tar of its flat files), and back.

The packed form is what travels in a Kafka message, so it has a hard size limit,
:data:`MAX_PACKED_BYTES` (4 MiB: well under the broker's ``message.max.bytes`` of 10 MiB, and
a Mahalanobis artifact is ~10 KiB, a VAEGMM one a few hundred KiB).  :func:`pack` checks it
when publishing, :func:`unpack_files` before reading anything.

Unpacking trusts nothing in the archive and never holds more than the message's own bytes:
only ustar headers of regular files with plain flat names (``[A-Za-z0-9._-]``, no path
separators, no leading dot) are accepted, at most :data:`MAX_FILES` of them, no duplicates.
Sparse members, links, directories, devices, pax and GNU extended headers are refused from
their header, before any content is read, and so is a member whose declared size exceeds the
bytes that follow it.  The tar is not compressed, so there is no decompression bomb either.
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
        raise Refused(
            "malformed",
            f"packed artifact holds {name!r}: only plain flat file names "
            "are allowed (no paths, no leading dot)",
        )


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
                raise Refused(
                    "malformed",
                    f"{path} is not a regular file; an artifact is a flat directory of files",
                )
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
            if buf.tell() > max_bytes:
                break
    packed = buf.getvalue()
    if len(packed) > max_bytes:
        raise Refused(
            "malformed",
            f"packed artifact is {len(packed):,} bytes, over the "
            f"{max_bytes:,}-byte limit for a registry message",
        )
    return packed


BLOCK = 512
USTAR_MAGIC = b"ustar\x0000"  # POSIX ustar, what :func:`pack` writes (GNU's "ustar  " is not)
REGTYPE = b"0"
_KINDS = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a device",
    b"4": "a device",
    b"5": "a directory",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"S": "a GNU sparse file",
    b"x": "a pax extended header",
    b"g": "a pax global header",
    b"L": "a GNU long name",
    b"K": "a GNU long link name",
    b"\x00": "an old-style (pre-POSIX) entry",
}


def _refuse(message: str) -> Refused:
    return Refused("malformed", f"packed artifact: {message}")


def _octal(field: bytes, what: str) -> int:
    """A ustar number: octal digits, space/NUL padded.  GNU base-256 numbers (high bit set), which
    can declare sizes far beyond the message, are refused rather than decoded."""
    text = field.rstrip(b" \x00").lstrip(b" ")
    if not text or not all(0x30 <= c <= 0x37 for c in text):
        raise _refuse(f"{what} field {bytes(field)!r} is not a plain octal number")
    return int(text, 8)


def _header_checksum_ok(header: bytes) -> bool:
    stored = _octal(header[148:156], "checksum")
    return stored == sum(header[:148]) + 8 * 0x20 + sum(header[156:])


def _member(data: bytes, pos: int) -> tuple[str, int, int]:
    """``(name, start, size)`` of the member whose header is at ``pos``.  Every check is made on
    the 512-byte header alone, before a byte of content is read: the type must be a plain
    file (sparse members, links, devices, GNU and pax extended headers are refused, since they
    can declare sizes or names the archive does not hold), and the declared size must fit in
    the bytes that follow."""
    header = data[pos : pos + BLOCK]
    if len(header) < BLOCK:
        raise _refuse(f"truncated header at byte {pos}")
    if header[257:263] not in (b"ustar\x00", b"ustar ") or not _header_checksum_ok(header):
        raise _refuse(f"no ustar header at byte {pos}: not a packed artifact")
    raw_name = header[:100].split(b"\x00", 1)[0]
    name = raw_name.decode("ascii", errors="replace")
    kind = header[156:157]
    if kind != REGTYPE:
        what = _KINDS.get(kind, f"type {kind!r}")
        raise _refuse(
            f"entry {name!r} is not a regular file but {what} (links, directories, "
            "devices, sparse files and extended headers are refused)"
        )
    if header[257:265] != USTAR_MAGIC:
        raise _refuse(f"entry {name!r} has a GNU header; pack() writes POSIX ustar only")
    if not raw_name.isascii():
        raise _refuse(f"entry name {raw_name!r} is not ASCII")
    if header[345:500].strip(b"\x00"):
        raise _refuse(f"entry {name!r} has a path prefix: only plain flat file names are allowed")
    _check_name(name)
    size = _octal(header[124:136], "size")
    start = pos + BLOCK
    if size > len(data) - start:
        raise _refuse(
            f"entry {name!r} declares {size:,} bytes but only {len(data) - start:,} "
            "follow (truncated, or a forged size)"
        )
    return name, start, size


def unpack_files(data: bytes, *, max_bytes: int = MAX_PACKED_BYTES) -> dict[str, bytes]:
    """``{name: content}`` of a packed artifact, every entry checked (see the module doc).

    The archive is parsed here rather than by :mod:`tarfile`, which honours sparse maps, pax
    and GNU headers and so can be made to allocate far more than the message holds.  Only
    ustar headers of plain files are read, each member's size is checked against the bytes
    present before its content is sliced, so the result never exceeds ``len(data)`` bytes."""
    if len(data) > max_bytes:
        raise _refuse(f"{len(data):,} bytes, over the {max_bytes:,}-byte limit")
    files: dict[str, bytes] = {}
    pos = 0
    while True:
        if pos + BLOCK > len(data):
            raise _refuse("no end-of-archive marker (truncated, or not a packed artifact)")
        if not any(data[pos : pos + BLOCK]):
            if data.count(0, pos) != len(data) - pos:
                raise _refuse(f"bytes after the end-of-archive marker at byte {pos}")
            break
        if len(files) >= MAX_FILES:
            raise _refuse(f"holds more than {MAX_FILES} files")
        name, start, size = _member(data, pos)
        if name in files:
            raise _refuse(f"holds {name!r} twice")
        files[name] = bytes(data[start : start + size])
        pos = start + -(-size // BLOCK) * BLOCK
    if not files:
        raise _refuse("empty")
    return files


def unpack(
    data: bytes, directory: str | os.PathLike, *, max_bytes: int = MAX_PACKED_BYTES
) -> pathlib.Path:
    """Write a packed artifact into ``directory`` (created; must not exist)."""
    files = unpack_files(data, max_bytes=max_bytes)
    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=False)
    for name, content in files.items():
        with open(root / name, "xb") as fh:  # exclusive: never follows or overwrites anything
            fh.write(content)
    return root
