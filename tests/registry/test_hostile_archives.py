"""Archives whose headers declare more than the message holds are refused from the header, in
bounded memory (issue 11: 1,536 bytes of GNU sparse member made a worker allocate 473 MiB and
write 256 MiB; a 64 GiB declaration crashed it at every start).

Memory is measured with tracemalloc around the call (Python, numpy and bytes allocations all
go through it): the peak above the start must stay under 10 MiB.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tracemalloc

import pytest

from stream_od.registry import Refused
from stream_od.registry.pack import MAX_FILES, pack, unpack_files
from stream_od.registry.topic import verify_message

MiB = 1024 * 1024
LIMIT = 10 * MiB


def checksum(header: bytearray) -> bytearray:
    """Set a header's checksum (the sum of its bytes, the checksum field counted as spaces)."""
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\x00 " % sum(header)
    return header


def raw_header(name: bytes, typeflag: bytes, size_field: bytes, magic=b"ustar\x0000") -> bytearray:
    h = bytearray(512)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\x00"
    h[124:136] = size_field
    h[136:148] = b"00000000000\x00"
    h[156:157] = typeflag
    h[257:265] = magic
    return checksum(h)


def octal(n: int) -> bytes:
    return b"%011o\x00" % n


def base256(n: int) -> bytes:
    return b"\x80" + n.to_bytes(11, "big")


def gnu_sparse(declared: int) -> bytes:
    """A GNU sparse member ('S', GNU magic): 0 bytes stored, one map entry at the end of a
    ``declared``-byte file, the real size in the old-GNU header; tarfile reads it as a regular
    file of ``declared`` bytes of zeros.  1,536 bytes in all, as in the issue."""
    h = raw_header(b"detector.npz", b"S", octal(0), magic=b"ustar  \x00")
    h[386:398], h[398:410] = octal(declared - 1), octal(1)  # sparse map: 1 byte at the end
    h[482:483] = b"\x00"  # no extension blocks
    h[483:495] = base256(declared) if declared >= 8**11 else octal(declared)
    return bytes(checksum(h)) + b"\x00" * 1024


def pax_sparse(declared: int) -> bytes:
    """The pax form of a sparse member: an 'x' header with GNU.sparse.* records, then a file."""
    records = b""
    for key, value in (
        (b"GNU.sparse.size", b"%d" % declared),
        (b"GNU.sparse.numblocks", b"1"),
        (b"GNU.sparse.offset", b"%d" % (declared - 1)),
        (b"GNU.sparse.numbytes", b"1"),
    ):
        body = b" " + key + b"=" + value + b"\n"
        n = len(body) + 3
        records += b"%d" % n + body
    pax = bytes(raw_header(b"PaxHeaders/detector.npz", b"x", octal(len(records))))
    pax += records.ljust(512, b"\x00")
    member = bytes(raw_header(b"detector.npz", b"0", octal(1))) + b"x".ljust(512, b"\x00")
    return pax + member + b"\x00" * 1024


def oversized_regular(field: bytes) -> bytes:
    """A plain file header declaring ``field`` bytes, followed by 512 bytes."""
    return bytes(raw_header(b"detector.npz", b"0", field)) + b"x" * 512 + b"\x00" * 1024


def gnu_longname() -> bytes:
    name = b"a" * 300
    return (
        bytes(raw_header(b"././@LongLink", b"L", octal(len(name) + 1), magic=b"ustar  \x00"))
        + (name + b"\x00").ljust(512, b"\x00")
        + b"\x00" * 1024
    )


HOSTILE = {
    "gnu sparse 256 MiB": gnu_sparse(256 * MiB),
    "gnu sparse 64 GiB": gnu_sparse(64 * 1024 * MiB),
    "pax sparse 256 MiB": pax_sparse(256 * MiB),
    "regular, octal size past the end": oversized_regular(octal(8**11 - 1)),
    "regular, base-256 size 64 GiB": oversized_regular(base256(64 * 1024 * MiB)),
    "gnu long name": gnu_longname(),
}


def peak_extra_bytes(fn) -> tuple[int, BaseException | None]:
    """Peak memory allocated while ``fn`` runs (tracemalloc), and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    raised = None
    try:
        fn()
    except BaseException as exc:
        raised = exc
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, raised


def test_the_issue_sparse_member_is_what_tarfile_inflates():
    # The reproduction holds: tarfile itself sees a 256 MiB regular file in 1,536 bytes.
    data = gnu_sparse(256 * MiB)
    assert len(data) == 1536
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (member,) = tar.getmembers()
    assert member.isreg() and member.issparse() and member.size == 256 * MiB


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_members_are_refused_from_their_header_in_bounded_memory(name):
    peak, raised = peak_extra_bytes(lambda: unpack_files(HOSTILE[name]))
    assert isinstance(raised, Refused) and raised.reason == "malformed", raised
    assert peak < LIMIT, f"{name}: {peak:,} bytes"
    print(f"{name}: refused ({raised}); peak {peak:,} bytes")


class Message:
    """What confluent-kafka hands the reader: enough of it for ``verify_message``."""

    def __init__(self, value: bytes, version: str = "v1"):
        self._value, self._version = value, version

    def topic(self):
        return "models"

    def offset(self):
        return 7

    def key(self):
        return self._version.encode()

    def value(self):
        return self._value

    def headers(self):
        return [
            ("version", self._version.encode()),
            ("sha256", hashlib.sha256(self._value).hexdigest().encode()),
        ]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_models_topic_message_with_a_hostile_member_is_refused_before_any_signature_check(
    name, trust
):
    msg = Message(HOSTILE[name])
    peak, raised = peak_extra_bytes(lambda: verify_message(msg, trust))
    assert isinstance(raised, Refused) and raised.reason == "malformed", raised
    assert peak < LIMIT, f"{name}: {peak:,} bytes"


def test_unpacking_never_holds_more_than_the_message(make_artifact):
    data = pack(make_artifact())
    files = unpack_files(data)
    assert sum(map(len, files.values())) <= len(data)
    peak, raised = peak_extra_bytes(lambda: unpack_files(data))
    assert raised is None and peak < 2 * len(data) + 64 * 1024


def test_every_member_must_be_a_plain_ustar_file(make_artifact):
    good = pack(make_artifact())
    # Trailing bytes after the end-of-archive marker, and a missing marker.
    with pytest.raises(Refused, match="after the end-of-archive"):
        unpack_files(good + b"x")
    with pytest.raises(Refused, match="end-of-archive"):
        unpack_files(good[: 512 * 3])
    # A bad header checksum.
    bad = bytearray(good)
    bad[0] ^= 1
    with pytest.raises(Refused, match="no ustar header"):
        unpack_files(bytes(bad))
    # A path in the ustar prefix field.
    h = raw_header(b"x", b"0", octal(1))
    h[345:350] = b"../.."
    with pytest.raises(Refused, match="prefix"):
        unpack_files(bytes(checksum(h)) + b"x".ljust(512, b"\x00") + b"\x00" * 1024)
    # MAX_FILES is checked before the next header is read.
    members = b"".join(
        bytes(raw_header(b"f%d" % i, b"0", octal(1))) + b"x".ljust(512, b"\x00")
        for i in range(MAX_FILES + 1)
    )
    with pytest.raises(Refused, match="more than"):
        unpack_files(members + b"\x00" * 1024)
