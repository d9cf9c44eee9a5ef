"""Bad input stops ``train``, ``evaluate`` and ``score`` with ``error: <file>: <what is wrong>``
and exit code 1 (``replay``: ``stream-od replay: <file>: ...`` and 2, as its other refusals),
not a traceback: a truncated or corrupt compressed data file.  A bad record in
``train --data-topic`` is counted as invalid, not a stop."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import orjson
import pytest

from stream_od.schema import KDD_COLUMNS
from tests.trainer.test_site import _run, write_log, zeek_records
from trainer.source import _fields

FIXTURE = Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz"
TRACEBACK = "Traceback"


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def bad_crc(data: bytes) -> bytes:  # gzip's trailer: CRC-32, then the length
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


def trailing_junk(data: bytes) -> bytes:
    return data + b"junk after the gzip member"


def flipped(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at % len(data)
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def bad_gzip_method(data: bytes) -> bytes:  # 8 (deflate) is the only one there is
    return data[:2] + b"\x07" + data[3:]


def bad_deflate(data: bytes) -> bytes:  # the first block's type: 3 is reserved (zlib.error)
    return data[:10] + b"\xff" + data[11:]  # gzip.compress writes a 10-byte header


def bad_bz2_header(data: bytes) -> bytes:  # "BZh" and the block size, "1" to "9"
    return data[:3] + b"x" + data[4:]


def bad_bz2_end(data: bytes) -> bytes:  # the stream's CRC, checked once all is read
    return flipped(data, -3)


# (name, compress, damage, what the message says)
DAMAGE = [
    ("truncated.gz", gzip.compress, truncated, "truncated gzip file"),
    ("bad-crc.gz", gzip.compress, bad_crc, "not a readable gzip file (CRC check failed"),
    ("junk.gz", gzip.compress, trailing_junk, "not a readable gzip file (Not a gzipped file"),
    ("bad-method.gz", gzip.compress, bad_gzip_method, "not a readable gzip file (Unknown comp"),
    ("bad-deflate.gz", gzip.compress, bad_deflate, "not a readable gzip file (Error -3 while"),
    ("truncated.bz2", bz2.compress, truncated, "truncated bzip2 file"),
    ("bad-header.bz2", bz2.compress, bad_bz2_header, "not a readable bzip2 file (Invalid data"),
    ("bad-crc.bz2", bz2.compress, bad_bz2_end, "not a readable bzip2 file (Invalid data"),
    ("truncated.xz", lzma.compress, truncated, "truncated xz file"),
    ("corrupt.xz", lzma.compress, flipped, "not a readable xz file"),
]


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert TRACEBACK not in err
    return err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def kdd_artifact(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("kdd") / "art"
    train = ["train", "--data", str(FIXTURE), "--detector", "mahalanobis", "--out", str(out)]
    assert _run([*train, "--n-train", "3000", "--quiet"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def zeek_artifact(tmp_path_factory) -> tuple[str, str]:
    """A site artifact, and an intact Zeek JSON log to give next to the damaged one."""
    tmp = tmp_path_factory.mktemp("zeek")
    log = write_log(tmp / "day1.log", zeek_records(2000, 100, seed=3))
    out = str(tmp / "art")
    train = ["train", "--data", log, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    assert _run([*train, "--target-alert-rate", "0.02", "--out", out, "--quiet"]) == 0
    return out, log


@pytest.mark.parametrize("name,compress,damage,message", DAMAGE)
@pytest.mark.parametrize("command", ["train", "evaluate", "score"])
def test_a_damaged_kdd_file_is_a_clear_error(
    tmp_path, capsys, kdd_artifact, command, name, compress, damage, message
):
    bad = tmp_path / f"kdd-{name}"
    bad.write_bytes(damage(compress(gzip.decompress(FIXTURE.read_bytes()))))
    argv = {
        "train": ["train", "--detector", "mahalanobis", "--n-train", "3000", "--quiet"],
        "evaluate": ["evaluate", "--artifact", kdd_artifact, "--no-plots"],
        "score": ["score", "--artifact", kdd_artifact],
    }[command]
    out = str(tmp_path / "out")
    capsys.readouterr()
    assert _run([*argv, "--data", str(bad), "--out", out]) == 1
    assert _error(capsys).startswith(f"error: {bad}: {message}")


@pytest.mark.parametrize("name,compress,damage,message", DAMAGE)
@pytest.mark.parametrize("command", ["train", "evaluate", "score"])
def test_a_damaged_sensor_log_is_a_clear_error_naming_it(
    tmp_path, capsys, zeek_artifact, command, name, compress, damage, message
):
    art, good = zeek_artifact
    bad = tmp_path / f"conn-{name}"
    bad.write_bytes(damage(compress(Path(good).read_bytes())))
    argv = {
        "train": ["train", "--schema", "zeek-conn", "--detector", "mahalanobis", "--quiet"],
        "evaluate": ["evaluate", "--artifact", art, "--no-plots"],
        "score": ["score", "--artifact", art],
    }[command]
    out = str(tmp_path / "out")
    capsys.readouterr()
    # the damaged file second: the message names it, not the intact one before it
    assert _run([*argv, "--data", good, str(bad), "--out", out]) == 1
    assert _error(capsys).startswith(f"error: {bad}: {message}")
    if command == "score":  # no output, and nothing partial beside it
        assert sorted(p.name for p in tmp_path.iterdir() if "out" in p.name) == []


@pytest.mark.parametrize("name,compress,damage,message", DAMAGE)
def test_replay_of_a_damaged_sensor_log_names_it_before_sending(
    tmp_path, capsys, zeek_artifact, name, compress, damage, message
):
    """The whole log is read (and sorted) before the first record goes: a log damaged at its
    end stops the replay before it connects (no broker listens on port 1)."""
    _, good = zeek_artifact
    bad = tmp_path / f"conn-{name}"
    bad.write_bytes(damage(compress(Path(good).read_bytes())))
    from stream_od.cli import build_parser

    argv = ["replay", "--quiet", "--topic", "t", "--bootstrap-servers", "127.0.0.1:1"]
    args = build_parser().parse_args([*argv, "--data", good, str(bad)])
    capsys.readouterr()
    assert args.func(args) == 2
    assert _error(capsys).startswith(f"stream-od replay: {bad}: {message}")


def test_a_data_path_that_is_a_directory_is_a_clear_error(tmp_path, capsys, kdd_artifact):
    data = tmp_path / "data.gz"
    data.mkdir()
    out = tmp_path / "scores.jsonl"
    assert _run(["score", "--artifact", kdd_artifact, "--data", str(data), "--out", str(out)]) == 1
    assert _error(capsys) == f"error: {data}: Is a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.gz"]  # no output, not partial


# --- train --data-topic: a record that is no KDD record is invalid, not a stop ------------------

KDD_LINES = gzip.decompress(FIXTURE.read_bytes()).splitlines()
GOOD = KDD_LINES[0].rsplit(b",", 1)[0].split(b",")  # 41 fields, no label

BAD_RECORDS = {
    "two CSV lines": b",".join(GOOD) + b"\n" + b",".join(GOOD),
    "a carriage return": b",".join(GOOD) + b"\r" + b",".join(GOOD),
    "a field over csv's size limit": b",".join([b"1" * 200_000, *GOOD[1:]]),
    "a word in a numeric field": b",".join([b"abc", *GOOD[1:]]),
    "a quoted line break in a numeric field": b",".join([b'"1\n2"', *GOOD[1:]]),
    "an infinite number": b",".join([b"1e400", *GOOD[1:]]),
    "nan": b",".join([b"nan", *GOOD[1:]]),
    "JSON null": orjson.dumps(dict.fromkeys(KDD_COLUMNS)),
    "40 fields": b",".join(GOOD[:-1]),
    "not UTF-8": b",".join([b"\xff", *GOOD[1:]]),
    "empty": b"",
}


@pytest.mark.parametrize("value", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_fields_refuses_a_value_that_is_no_kdd_record(value):
    with pytest.raises((ValueError, KeyError, UnicodeDecodeError)):
        _fields(value)


def test_fields_takes_kdd_csv_with_or_without_the_label_and_json():
    row = [f.decode() for f in GOOD]
    assert _fields(b",".join(GOOD)) == row
    assert _fields(b",".join(GOOD) + b",normal.\n") == row
    doc = dict(zip(KDD_COLUMNS, row))
    assert _fields(orjson.dumps(doc)) == row
    numbers = {
        k: (float(v) if k not in ("protocol_type", "service", "flag") else v)
        for k, v in doc.items()
    }
    assert _fields(orjson.dumps(numbers))[0] == "0.0"
    assert _fields(b",".join([b"1e-05", *GOOD[1:]]))[0] == "1e-05"


@pytest.mark.parametrize(
    "bad",
    ["two CSV lines", "a field over csv's size limit", "a word in a numeric field", "JSON null"],
)
def test_train_from_a_topic_counts_a_bad_record_as_invalid(
    kafka_bootstrap, new_topic, tmp_path, capsys, bad
):
    from confluent_kafka import Producer

    topic = new_topic(prefix="kdd")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    lines = KDD_LINES[:1500]
    for i, line in enumerate(lines):
        if i == 700:  # amid the good ones, labelled normal as they are
            producer.produce(topic, BAD_RECORDS[bad], headers=[("label", b"normal")])
        value, label = line.rsplit(b",", 1)
        producer.produce(topic, value, headers=[("label", label.rstrip(b"."))])
    assert producer.flush(30) == 0
    rc = _run(
        [
            "train",
            "--data-topic",
            topic,
            "--n-records",
            "5000",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--detector",
            "mahalanobis",
            "--n-train",
            "500",
            "--quiet",
            "--out",
            str(tmp_path / "art"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "'invalid': 1}" in err and f"'normal': {sum(b'normal' in x for x in lines)}" in err
