import io
import tarfile

import pytest

from stream_od.registry import Refused
from stream_od.registry.pack import MAX_FILES, pack, unpack, unpack_files


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def file_member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_round_trip_is_byte_identical_and_deterministic(make_artifact, tmp_path):
    src = make_artifact()
    data = pack(src)
    assert pack(src) == data
    out = unpack(data, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())
    for p in src.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes()


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc/passwd", ".hidden", "..", "a\\b", ""])
def test_unpack_refuses_names_that_are_not_flat(name):
    with pytest.raises(Refused) as exc:
        unpack_files(tar_of(file_member(name)))
    assert exc.value.reason == "malformed"


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
)
def test_unpack_refuses_links_directories_and_devices(kind):
    info = tarfile.TarInfo("detector.npz")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(Refused, match="not a regular file"):
        unpack_files(tar_of((info, b"")))


def test_unpack_refuses_duplicates_too_many_files_size_and_garbage():
    with pytest.raises(Refused, match="twice"):
        unpack_files(tar_of(file_member("a"), file_member("a")))
    with pytest.raises(Refused, match="more than"):
        unpack_files(tar_of(*(file_member(f"f{i}") for i in range(MAX_FILES + 1))))
    big = tar_of(file_member("a", b"0" * 5000))
    with pytest.raises(Refused, match="limit"):
        unpack_files(big, max_bytes=4096)
    with pytest.raises(Refused, match="not a packed artifact"):
        unpack_files(b"\x00garbage" * 100)
    # A header claiming more bytes than the archive holds.
    info, _ = file_member("a", b"x" * 10)
    info.size = 10_000_000
    buf = io.BytesIO()
    buf.write(info.tobuf())
    buf.write(b"x" * 512)
    with pytest.raises(Refused):
        unpack_files(buf.getvalue())


def test_unpack_never_writes_into_an_existing_directory(make_artifact, tmp_path):
    data = pack(make_artifact())
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        unpack(data, tmp_path / "out")


def test_pack_checks_the_size_limit_and_flatness(make_artifact, tmp_path):
    src = make_artifact()
    with pytest.raises(Refused, match="limit for a registry message"):
        pack(src, max_bytes=2048)
    (src / "sub").mkdir()
    with pytest.raises(Refused, match="not a regular file"):
        pack(src)
    (src / "sub").rmdir()
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(Refused, match="not a regular file"):
        pack(src)
