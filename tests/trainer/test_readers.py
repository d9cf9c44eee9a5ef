"""trainer.readers: Zeek TSV / Zeek JSON / Suricata EVE readers, on fixtures and the shared data."""

from __future__ import annotations

import bz2
import collections
import gzip
import lzma
import shutil
from pathlib import Path

import orjson
import pytest

from trainer.readers import (
    JSON_SNIFF_LINES,
    LogTable,
    detect_format,
    event_time,
    is_sensor_log,
    label_columns,
    read_log,
    read_logs,
    sort_by_field,
    stream_logs,
    time_key,
    zeek_tsv_records,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "logs"
TSV = FIXTURES / "zeek-conn-labeled.log"
JSON = FIXTURES / "zeek-conn-labeled.json"
IOT23 = FIXTURES / "iot23-conn-labeled.log"
EVE = FIXTURES / "suricata-eve.json"
SHARED_ZEEK = REPO.parent / "shared" / "data" / "zeek"

HEADER = [
    "#separator \\x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tconn",
]


def _tsv(fields: dict[str, str], rows: list[list[str]], *, header: list[str] = HEADER) -> list[str]:
    """Zeek TSV lines for the given ``{name: type}`` columns and rows."""
    return [
        *header,
        "#fields\t" + "\t".join(fields),
        "#types\t" + "\t".join(fields.values()),
        *("\t".join(row) for row in rows),
    ]


def _by_uid(table: LogTable) -> dict[str, dict]:
    return {record["uid"]: record for record in table.records}


def _gzip_copy(src: Path, dst: Path) -> Path:
    with open(src, "rb") as fin, gzip.open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


# --- Zeek TSV and its JSON twin -----------------------------------------------------------------


def test_tsv_and_json_fixtures_give_identical_records():
    tsv, js = read_log(TSV), read_log(JSON)
    assert (tsv.fmt, js.fmt) == ("zeek-tsv", "zeek-json")
    assert len(tsv) == len(js) == 40
    assert tsv.records == js.records
    assert [list(r) for r in tsv.records] == [list(r) for r in js.records]  # same key order
    assert tsv.paths == (str(TSV),)


def test_tsv_values_are_typed_as_zeek_json_writes_them():
    records = read_log(TSV).records
    first = records[0]
    assert first == {
        "ts": 1655071198.444458,
        "uid": "CHLXQF2OBY4onAR0Ug",
        "id.orig_h": "147.32.81.167",
        "id.orig_p": 62771,
        "id.resp_h": "40.74.108.123",
        "id.resp_p": 443,
        "proto": "tcp",
        "service": "ssl",
        "duration": 1.135424,
        "orig_bytes": 1596,
        "resp_bytes": 4039,
        "conn_state": "SF",
        "local_orig": True,
        "local_resp": False,
        "missed_bytes": 5138,
        "history": "ShADdaFf",
        "orig_pkts": 14,
        "orig_ip_bytes": 1016,
        "resp_pkts": 16,
        "resp_ip_bytes": 1226,
        "tunnel_parents": [],
        "label": "Benign",
        "detailedlabel": "Microsoft",
    }
    for record in records:
        assert type(record["ts"]) is float
        assert type(record["id.orig_p"]) is int and type(record["id.resp_p"]) is int
        assert type(record["local_orig"]) is bool
        assert record["tunnel_parents"] == []
        assert "-" not in record.values()
        assert "(empty)" not in record.values()


def test_unset_fields_are_left_out():
    by_uid = _by_uid(read_log(TSV))
    scan = by_uid["C3H3zk2ehccp8w6P64"]  # S0: service, duration and byte counts are "-"
    for key in ("service", "duration", "orig_bytes", "resp_bytes"):
        assert key not in scan
    assert scan["conn_state"] == "S0" and scan["orig_pkts"] == 1
    assert "history" not in by_uid["CcNcAGe4yoAlXjpcd"]  # ICMP row, history "-"
    assert "service" not in by_uid["CEL3aLvvNGvO6Ecoa"]
    assert by_uid["CEL3aLvvNGvO6Ecoa"]["duration"] == 0.00001
    # "(empty)" in a string column is the empty string (Background rows have no detail).
    assert by_uid["CBbNPc1CtJSUvI3DVb"]["label"] == "Background"
    assert by_uid["CBbNPc1CtJSUvI3DVb"]["detailedlabel"] == ""


def test_json_fixture_is_what_zeek_json_writer_writes():
    lines = JSON.read_bytes().splitlines()
    assert len(lines) == 40
    raw = {orjson.loads(line)["uid"]: line for line in lines}
    scan = raw["C3H3zk2ehccp8w6P64"]
    assert b'"service"' not in scan and b'"duration"' not in scan and b'"orig_bytes"' not in scan
    assert b'"tunnel_parents":[]' in scan
    assert b'"local_orig":false' in scan and b'"id.orig_p":22437' in scan
    assert b'"ts":1655072328.578259' in scan
    assert b'"history"' not in raw["CcNcAGe4yoAlXjpcd"]


def test_header_blocks_escapes_and_containers():
    lines = [
        *_tsv(
            {"ts": "time", "uid": "string", "names": "set[string]", "ns": "vector[count]"},
            [
                ["1.5", "C1", "a,b\\x2cc", "1,2,3"],
                ["2.5", "\\x2d", "(empty)", "(empty)"],
                ["3.5", "\\x28empty)", "-", "-"],
                ["4.5", "caf\\xc3\\xa9\\x09tab\\xff", "x,-,(empty)", "7"],
            ],
        ),
        "#close\t2022-06-17-01-00-00",
        # A second block (rotation / concatenation) with other columns and settings.
        "#separator \\x7c",
        "#set_separator|;",
        "#fields|ts|uid|ok|rtt",
        "#types|time|string|bool|double",
        "9.25|C9|T|0.5",
        "9.5|-|F|-",
    ]
    records = zeek_tsv_records(lines)
    assert records == [
        {"ts": 1.5, "uid": "C1", "names": ["a", "b,c"], "ns": [1, 2, 3]},
        {"ts": 2.5, "uid": "-", "names": [], "ns": []},
        {"ts": 3.5, "uid": "(empty)"},
        {"ts": 4.5, "uid": "café\ttab\\xff", "names": ["x", None, ""], "ns": [7]},
        {"ts": 9.25, "uid": "C9", "ok": True, "rtt": 0.5},
        {"ts": 9.5, "ok": False},
    ]


def test_lines_keep_or_lose_their_newlines_and_blank_lines_are_skipped():
    lines = TSV.read_text().splitlines()
    with_ends = TSV.read_text().splitlines(keepends=True)
    crlf = [line.rstrip("\n") + "\r\n" for line in with_ends]
    expected = read_log(TSV).records
    assert zeek_tsv_records(lines) == expected
    assert zeek_tsv_records(with_ends) == expected
    assert zeek_tsv_records(["", *crlf, "\n"]) == expected


def test_wrong_field_count_raises_with_line_number(tmp_path):
    lines = TSV.read_text().splitlines()
    lines[12] = lines[12].rsplit("\t", 1)[0]  # line 13 loses its last field
    path = tmp_path / "short.log"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{path}:13: row has 22 fields, but #fields names 23"):
        read_log(path)
    lines = TSV.read_text().splitlines()
    lines[20] += "\textra"
    with pytest.raises(ValueError, match=r"<lines>:21: row has 24 fields"):
        zeek_tsv_records(lines)


def test_missing_fields_header_raises_naming_the_file(tmp_path):
    path = tmp_path / "headless.log"
    path.write_text("#separator \\x09\n#unset_field\t-\n1.0\tC1\t-\n")
    with pytest.raises(ValueError, match=rf"{path}:3: data row before any #fields"):
        read_log(path)
    with pytest.raises(ValueError, match=rf"{path}:3: data row before any #fields"):
        read_log(path, fmt="zeek-tsv")


def test_value_of_wrong_type_raises_with_line_and_field():
    lines = _tsv({"ts": "time", "n": "count", "ok": "bool"}, [["1.0", "5", "T"], ["2.0", "x", "F"]])
    with pytest.raises(ValueError, match=r"<lines>:9: field 'n' \(count\): cannot read 'x'"):
        zeek_tsv_records(lines)
    lines = _tsv({"ts": "time", "ok": "bool"}, [["1.0", "yes"]])
    with pytest.raises(ValueError, match=r"field 'ok' \(bool\): cannot read 'yes'"):
        zeek_tsv_records(lines)


def test_types_count_must_match_fields():
    lines = [*HEADER, "#fields\tts\tuid", "#types\ttime", "1.0\tC1"]
    with pytest.raises(ValueError, match=r"#types lists 1 types for 2 #fields"):
        zeek_tsv_records(lines)


def test_without_types_every_column_is_a_string():
    assert zeek_tsv_records([*HEADER, "#fields\tts\tuid\tx", "1.0\tC1\t-"]) == [
        {"ts": "1.0", "uid": "C1"}
    ]


# --- IoT-23 layout ------------------------------------------------------------------------------


def test_iot23_three_space_layout():
    table = read_log(IOT23)
    assert table.fmt == "zeek-tsv" and len(table) == 8
    first = table.records[0]
    assert list(first)[-2:] == ["label", "detailed-label"]
    assert first["label"] == "Malicious"
    assert first["detailed-label"] == "PartOfAHorizontalPortScan"
    assert "tunnel_parents" not in first and "local_orig" not in first  # "-"
    assert first["id.orig_p"] == 41040 and first["duration"] == 3.139211
    labels = [(r["label"], r.get("detailed-label")) for r in table.records]
    assert labels == [
        ("Malicious", "PartOfAHorizontalPortScan"),
        ("Malicious", "PartOfAHorizontalPortScan"),
        ("Benign", None),
        ("Malicious", "C&C"),
        ("Benign", None),
        ("Malicious", "Attack"),
        ("Malicious", "DDoS"),
        ("Benign", None),
    ]
    assert table.records[3]["tunnel_parents"] == []
    assert label_columns(table) == ("label", "detailed-label")


def test_iot23_header_accepts_rows_with_tabs_too():
    lines = IOT23.read_text().splitlines()
    lines[8] = lines[8].replace("   ", "\t")
    assert zeek_tsv_records(lines) == read_log(IOT23).records


def test_iot23_row_missing_a_part_raises_with_line_number():
    lines = IOT23.read_text().splitlines()
    lines[9] = lines[9].rsplit("   ", 1)[0]  # line 10 loses detailed-label
    with pytest.raises(ValueError, match=r"<lines>:10: row has 22 fields, but #fields names 23"):
        zeek_tsv_records(lines)


# --- Suricata EVE -------------------------------------------------------------------------------


def test_eve_keeps_flow_events_with_nested_fields():
    table = read_log(EVE)
    assert table.fmt == "eve-json"
    assert len(table) == 6
    assert {r["event_type"] for r in table.records} == {"flow"}
    tls = next(r for r in table.records if r.get("app_proto") == "tls")
    assert tls["src_ip"] == "192.0.2.10" and tls["dest_ip"] == "198.51.100.20"
    assert tls["src_port"] == 49822 and tls["dest_port"] == 443 and tls["proto"] == "TCP"
    assert tls["flow_id"] == 1129823345009871
    assert tls["community_id"] == "1:Fwmnbl+yZ3QXu8MdPr4NJGK+QbI="
    assert tls["flow"] == {
        "pkts_toserver": 14,
        "pkts_toclient": 12,
        "bytes_toserver": 2310,
        "bytes_toclient": 8642,
        "start": "2023-02-20T12:00:01.004321+0000",
        "end": "2023-02-20T12:00:04.897654+0000",
        "age": 3,
        "state": "closed",
        "reason": "timeout",
        "alerted": False,
    }
    assert tls["tcp"]["state"] == "closed"


def test_eve_event_type_filter():
    every = read_log(EVE, event_types=None)
    assert len(every) == 10
    counts = collections.Counter(r["event_type"] for r in every.records)
    assert counts == {"flow": 6, "stats": 1, "dns": 1, "alert": 1, "http": 1}
    assert [r["event_type"] for r in read_log(EVE, event_types=("alert", "dns")).records] == [
        "dns",
        "alert",
    ]
    assert len(read_log(EVE, event_types="alert")) == 1  # a single name, not its letters
    assert len(read_log(EVE, event_types=())) == 0


def test_json_line_that_is_not_an_object_raises_with_line_number(tmp_path):
    path = tmp_path / "eve.json"
    lines = EVE.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], "[1, 2]", *lines[3:]]) + "\n")
    with pytest.raises(ValueError, match=rf"{path}:4: expected one JSON object per line"):
        read_log(path)
    path.write_text("\n".join([*lines[:2], '{"ts": 1.0', *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=rf"{path}:3: not a JSON object"):
        read_log(path, fmt="eve-json")
    path.write_text('{"ts": 1.0, "uid": "C1"}\n\n{"ts": 2.0}\nnope\n')
    with pytest.raises(ValueError, match=rf"{path}:4: not a JSON object"):
        read_log(path)


# --- format detection and gzip ------------------------------------------------------------------


def test_detect_format_on_each_fixture():
    assert detect_format(TSV) == "zeek-tsv"
    assert detect_format(IOT23) == "zeek-tsv"
    assert detect_format(JSON) == "zeek-json"
    assert detect_format(EVE) == "eve-json"
    assert detect_format(str(EVE)) == "eve-json"


def test_detect_format_rejects_other_files(tmp_path):
    cases = {
        "plain.csv": "ts,uid\n1.0,C1\n",
        "empty.log": "\n\n",
        "array.json": "[1, 2]\n",
        "names-not-from-ts.log": "uid\tts\nC1\t1.0\n",  # not tsv = T: that starts with ts
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ValueError, match=rf"{path}: unknown log format.*expected a Zeek TSV"):
            detect_format(path)
        with pytest.raises(ValueError, match=rf"{path}: unknown log format"):
            read_log(path)


@pytest.mark.parametrize("end", ["start", "end"])
@pytest.mark.parametrize("source,kind", [("JSON", "zeek-json"), ("EVE", "eve-json")])
def test_a_json_log_whose_first_line_was_cut_is_still_that_log(tmp_path, source, kind, end):
    """A copy taken while the sensor wrote, or from an offset of a live file: the first line
    is the start or the end of an object (the end starts with no ``{``).  The file is still
    recognised (not taken for KDD lines by ``score``), and reading it names the damaged
    line."""
    lines = Path(globals()[source]).read_bytes().splitlines()
    half = len(lines[0]) // 2
    fragment = lines[0][:half] if end == "start" else lines[0][half:]
    path = tmp_path / "cut.json"
    path.write_bytes(b"\n".join([fragment, *lines[1:]]) + b"\n")
    assert detect_format(path) == kind
    assert is_sensor_log([path])
    with pytest.raises(ValueError, match=rf"{path}:1: not a JSON object"):
        read_log(path)
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"{not json\n" * (JSON_SNIFF_LINES + 1) + lines[0] + b"\n")
    with pytest.raises(ValueError, match=rf"{junk}: unknown log format"):
        detect_format(junk)


@pytest.mark.parametrize("source", ["TSV", "JSON", "EVE"])
def test_a_log_still_being_written_is_read_without_its_unfinished_last_line(tmp_path, source):
    """Training on today's conn.log while Zeek writes it: the file may end mid-record.  That
    line is left out with a warning naming it; the same damage on any other line is still an
    error naming that line."""
    text = Path(globals()[source]).read_bytes()
    whole = read_log(Path(globals()[source]), event_types=None).records
    lines = text.rstrip(b"\n").split(b"\n")
    last = lines[-1]
    path = tmp_path / "current.log"
    path.write_bytes(b"\n".join([*lines[:-1], last[: len(last) // 2]]))  # no newline at the end
    with pytest.warns(UserWarning, match=rf"{path}:{len(lines)}: the file ends in the middle"):
        got = read_log(path, event_types=None).records
    assert got == whole[:-1]
    path.write_bytes(b"\n".join([*lines[:-2], last[: len(last) // 2], lines[-2]]) + b"\n")
    with pytest.raises(ValueError, match=rf"{path}:{len(lines) - 1}: "):
        read_log(path, event_types=None)


def test_tsv_rows_without_their_header_are_refused_with_the_setting_named(tmp_path):
    """LogAscii::include_meta = F: rows alone, and nothing says which column is which."""
    path = tmp_path / "conn.log"
    path.write_text("\n".join(x for x in TSV.read_text().splitlines() if not x.startswith("#")))
    with pytest.raises(ValueError, match=r"unknown log format.*include_meta = F"):
        detect_format(path)


def _tsv_mode_copy(src: Path, dst: Path) -> Path:
    """``src`` as Zeek's ASCII writer writes it with ``tsv = T``: one header line of column
    names (no ``#fields`` before them), no other meta data."""
    lines = src.read_text().splitlines()
    names = next(line for line in lines if line.startswith("#fields\t"))[len("#fields\t") :]
    dst.write_text("\n".join([names, *(line for line in lines if not line.startswith("#"))]))
    return dst


def test_tsv_mode_reads_as_the_full_header_does(tmp_path):
    """LogAscii's per-filter ``tsv = T``: the column names alone; conn.log's documented
    columns are typed as #types would type them, so the records are the same."""
    path = _tsv_mode_copy(TSV, tmp_path / "conn.log")
    assert detect_format(path) == "zeek-tsv"
    table = read_log(path)
    assert table.records == read_log(TSV).records
    assert [list(r) for r in table.records] == [list(r) for r in read_log(TSV).records]


def test_tsv_mode_concatenated_files_and_unknown_columns(tmp_path):
    """Each concatenated file brings its own names line; a column conn.log does not document
    is read as a string (nothing else can be known of it)."""
    path = tmp_path / "two.log"
    path.write_text(
        "ts\tuid\torig_bytes\tlocal_orig\tmy_score\n1.5\tC1\t10\tT\t0.25\n"
        "ts\tuid\tduration\ttunnel_parents\n2.5\tC2\t-\t(empty)\n"
    )
    assert read_log(path).records == [
        {"ts": 1.5, "uid": "C1", "orig_bytes": 10, "local_orig": True, "my_score": "0.25"},
        {"ts": 2.5, "uid": "C2", "tunnel_parents": []},
    ]


def test_tsv_mode_iot23_layout(tmp_path):
    path = _tsv_mode_copy(IOT23, tmp_path / "iot23.log")
    assert read_log(path).records == read_log(IOT23).records


def test_a_tagged_zeek_record_is_timed_by_the_record_inside():
    """zeek-kafka's ``{"conn": {...}}`` (and with its additional values beside it) sorts where
    the plain record does: score and replay put a log of them in the same order."""
    record = {"ts": 1.7e9, "uid": "C1", "id.orig_h": "10.0.0.1"}
    for tagged in ({"conn": record}, {"conn": record, "zeek_server": "edge-1"}):
        assert time_key(tagged, "zeek-json") == time_key(record, "zeek-json") == (0, 1.7e9)
    assert time_key({"conn": record, "n": 1}, "zeek-json") == (1, 0.0)  # not tagged: no time


def test_records_from_a_topic_go_in_the_order_a_file_of_them_is_read(tmp_path):
    """Training from a topic sorts by the schema's time field, since partitions interleave;
    EVE flows go by ``timestamp`` there too (when Suricata logged them, as a file of them is
    read), not by ``flow.start``: the same traffic trains the same from a file or a topic."""

    def flow(logged: str, start: str, n: int) -> dict:
        return {"timestamp": logged, "event_type": "flow", "flow_id": n, "flow": {"start": start}}

    flows = [
        flow("2023-02-20T11:05:00.000000+0100", "2023-02-20T10:00:00.000000+0100", 1),
        flow("2023-02-20T11:01:00.000000+0100", "2023-02-20T11:00:00.000000+0100", 2),
    ]
    path = tmp_path / "eve.json"
    path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in flows))
    from_file = [r["flow_id"] for r in read_logs([path]).records]
    from_topic = [r["flow_id"] for r in sort_by_field(list(flows), "flow.start")]
    assert from_file == from_topic == [2, 1]
    zeek = [{"ts": 3.0, "uid": "C3"}, {"uid": "C0"}, {"ts": 1.0, "uid": "C1"}]
    assert [r["uid"] for r in sort_by_field(zeek, "ts")] == ["C1", "C3", "C0"]


def test_detect_format_skips_leading_blank_lines(tmp_path):
    path = tmp_path / "eve.json"
    path.write_text("\n  \n" + EVE.read_text())
    assert detect_format(path) == "eve-json"
    assert len(read_log(path)) == 6


@pytest.mark.parametrize("opener,suffix", [(bz2.open, ".bz2"), (lzma.open, ".xz")])
def test_bzip2_and_xz_are_read_transparently(tmp_path, opener, suffix):
    for src in (TSV, JSON, IOT23, EVE):
        packed = tmp_path / (src.name + suffix)
        with opener(packed, "wb") as fout:
            fout.write(src.read_bytes())
        assert detect_format(packed) == detect_format(src)
        assert read_log(packed).records == read_log(src).records


def test_gzip_is_read_transparently(tmp_path):
    for src in (TSV, JSON, IOT23, EVE):
        packed = _gzip_copy(src, tmp_path / (src.name + ".gz"))
        assert detect_format(packed) == detect_format(src)
        table = read_log(packed)
        assert table.records == read_log(src).records
        assert table.paths == (str(packed),)
    # The magic bytes decide, not the file name.
    disguised = _gzip_copy(TSV, tmp_path / "conn.log")
    assert read_log(disguised).records == read_log(TSV).records


def test_unknown_fmt_is_rejected():
    with pytest.raises(ValueError, match="unknown log format 'csv'"):
        read_log(TSV, fmt="csv")
    with pytest.raises(ValueError, match="unknown log format 'csv'"):
        event_time({"ts": 1.0}, "csv")


# --- event time ---------------------------------------------------------------------------------


def test_event_time():
    assert event_time({"ts": 1655071198.444458}, "zeek-tsv") == 1655071198.444458
    assert event_time({"ts": 1655071198}, "zeek-json") == 1655071198.0
    # Zeek's JSON writer with JSON::TS_ISO8601.
    iso = event_time({"ts": "2022-06-12T22:39:58.444458Z"}, "zeek-json")
    assert iso == pytest.approx(1655073598.444458, abs=1e-6)
    eve = event_time({"timestamp": "2023-02-20T12:00:00.123456+0000"}, "eve-json")
    assert eve == pytest.approx(1676894400.123456, abs=1e-6)
    west = event_time({"timestamp": "2023-02-20T04:00:00.123456-0800"}, "eve-json")
    assert west == pytest.approx(eve, abs=1e-6)
    naive = event_time({"timestamp": "2023-02-20T12:00:00.123456"}, "eve-json")
    assert naive == pytest.approx(eve, abs=1e-6)  # no offset: UTC
    for record in ({}, {"ts": None}, {"ts": "yesterday"}, {"ts": True}, {"ts": [1]}):
        assert event_time(record, "zeek-json") is None
    assert event_time({"ts": float("nan")}, "zeek-json") is None
    assert event_time({"ts": 1.0}, "eve-json") is None  # EVE time is "timestamp"
    assert event_time({"timestamp": "2023-02-20T12:00:00+0000"}, "zeek-json") is None


def test_event_time_on_fixtures():
    for record in read_log(TSV).records:
        assert event_time(record, "zeek-tsv") == record["ts"]
    for record in read_log(EVE, event_types=None).records:
        assert event_time(record, "eve-json") is not None


# --- read_logs ----------------------------------------------------------------------------------


def test_read_logs_sorts_by_time():
    table = read_logs([TSV])
    times = [r["ts"] for r in table.records]
    assert times == sorted(times)
    assert times != [r["ts"] for r in read_log(TSV).records]  # Zeek writes at connection end
    assert sorted(map(orjson.dumps, table.records)) == sorted(
        map(orjson.dumps, read_log(TSV).records)
    )
    eve = read_logs([EVE])
    stamps = [event_time(r, "eve-json") for r in eve.records]
    assert stamps == sorted(stamps)


def test_read_logs_sorts_zeek_ts_millis_with_epoch_seconds(tmp_path):
    """A site that switched LogAscii::json_timestamps to JSON::TS_MILLIS (``ts`` as integer
    milliseconds) between rotations: its logs still read in one time order."""
    records = read_log(JSON).records
    half = len(records) // 2
    (tmp_path / "a.json").write_bytes(b"\n".join(map(orjson.dumps, records[:half])))
    millis = [{**r, "ts": round(r["ts"] * 1000)} for r in records[half:]]
    (tmp_path / "b.json").write_bytes(b"\n".join(map(orjson.dumps, millis)))
    assert event_time(millis[0], "zeek-json") == pytest.approx(records[half]["ts"], abs=1e-3)
    table = read_logs([tmp_path / "a.json", tmp_path / "b.json"])
    times = [event_time(r, "zeek-json") for r in table.records]
    assert times == sorted(times)
    assert [r["uid"] for r in table.records] == [r["uid"] for r in read_logs([JSON]).records]


def test_read_logs_is_stable_and_puts_untimed_records_last(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(
        '{"ts": 5.0, "uid": "a1"}\n{"uid": "a-untimed"}\n{"ts": 1.0, "uid": "a2"}\n'
        '{"ts": 5.0, "uid": "a3"}\n'
    )
    b.write_text('{"ts": "bad", "uid": "b-untimed"}\n{"ts": 5.0, "uid": "b1"}\n')
    table = read_logs([a, b])
    assert [r["uid"] for r in table.records] == [
        "a2",
        "a1",
        "a3",
        "b1",
        "a-untimed",
        "b-untimed",
    ]
    assert table.fmt == "zeek-json" and table.paths == (str(a), str(b))
    unsorted = read_logs([a, b], sort_by_time=False)
    assert [r["uid"] for r in unsorted.records] == [
        "a1",
        "a-untimed",
        "a2",
        "a3",
        "b-untimed",
        "b1",
    ]


def test_read_logs_concatenates_tsv_and_gzip_of_one_format(tmp_path):
    packed = _gzip_copy(IOT23, tmp_path / "iot23.log.gz")
    table = read_logs([TSV, packed])
    assert table.fmt == "zeek-tsv"
    assert len(table) == 48
    assert table.paths == (str(TSV), str(packed))
    assert read_logs(TSV).records == read_logs([TSV]).records  # a single path is fine too


def test_read_logs_rejects_mixed_formats_and_nothing():
    with pytest.raises(ValueError, match="all files must have one format"):
        read_logs([TSV, EVE])
    with pytest.raises(ValueError, match="no log files"):
        read_logs([])


def test_read_logs_skips_an_empty_file_among_logs(tmp_path):
    """logrotate's copytruncate leaves eve.json empty beside eve.json.1: a glob catches both."""
    emptied = tmp_path / "eve.json"
    emptied.write_bytes(b"")
    gz_emptied = _gzip_copy(emptied, tmp_path / "eve.json.2.gz")
    table = read_logs([emptied, EVE, gz_emptied])
    assert table.records == read_logs([EVE]).records
    assert table.paths == (str(EVE),) and table.empty == (str(emptied), str(gz_emptied))
    assert is_sensor_log([emptied, EVE]) and not is_sensor_log([emptied])
    with pytest.raises(ValueError, match="every file given is empty"):
        read_logs([emptied, gz_emptied])
    with pytest.raises(ValueError, match="an empty file"):
        read_logs([emptied])  # one file: the format error, as before


def test_read_logs_with_explicit_format_and_event_types():
    table = read_logs([EVE], fmt="eve-json", event_types=None, sort_by_time=False)
    assert len(table) == 10
    assert table.records == read_log(EVE, event_types=None).records


def test_stream_logs_reads_one_record_at_a_time_what_read_logs_reads(tmp_path):
    """What ``train --max-rows`` reads: the same checks, the same records, in file order, and
    nothing read before they are asked for."""
    emptied = tmp_path / "conn.log"
    emptied.write_bytes(b"")
    for files in ([TSV, emptied, TSV], [JSON], [IOT23], [EVE]):
        stream = stream_logs(files, event_types=None)
        table = read_logs(files, event_types=None, sort_by_time=False)
        assert (stream.fmt, stream.paths, stream.empty) == (table.fmt, table.paths, table.empty)
        records = stream.records()
        assert next(records) == table.records[0]
        assert [table.records[0], *records] == table.records
        by_time = read_logs(files, event_types=None)
        assert sorted(table.records, key=lambda r: time_key(r, table.fmt)) == by_time.records
    with pytest.raises(ValueError, match="all files must have one format"):
        stream_logs([TSV, EVE])
    with pytest.raises(ValueError, match="every file given is empty"):
        stream_logs([emptied, emptied])


def test_a_stream_of_a_bad_log_names_the_line_when_it_gets_there(tmp_path):
    bad = tmp_path / "conn.json"
    bad.write_bytes(JSON.read_bytes() + b"[1, 2]\n")
    records = stream_logs([bad]).records()
    assert len([next(records) for _ in range(40)]) == 40
    with pytest.raises(ValueError, match=r"conn.json:41: expected one JSON object per line"):
        next(records)


# --- label columns ------------------------------------------------------------------------------


def test_label_columns():
    assert label_columns(read_log(TSV)) == ("label", "detailedlabel")
    assert label_columns(read_log(JSON)) == ("label", "detailedlabel")
    assert label_columns(read_log(IOT23)) == ("label", "detailed-label")
    assert label_columns(read_log(EVE)) == (None, None)
    assert label_columns(LogTable(records=[], fmt="zeek-json", paths=())) == (None, None)
    mixed = LogTable(
        records=[{"ts": 1.0}, {"ts": 2.0, "Label": "Benign", "detailed_label": "x"}],
        fmt="zeek-json",
        paths=(),
    )
    assert label_columns(mixed) == ("Label", "detailed_label")
    both = LogTable(
        records=[{"detailed_label": "x", "detailedlabel": "y"}], fmt="zeek-json", paths=()
    )
    assert label_columns(both) == (None, "detailedlabel")


def test_log_table_is_frozen():
    table = read_log(TSV)
    with pytest.raises(AttributeError):
        table.fmt = "zeek-json"  # type: ignore[misc]


# --- the shared labelled Zeek captures ----------------------------------------------------------

# Rows and label counts from shared/data/zeek/README.md.
SHARED_EXPECTED = {
    "008-": (5_663, {"malicious": 4_201, "benign": 1_402, "background": 60}),
    "010-": (5_347, {"malicious": 3_373, "benign": 1_937, "background": 37}),
    "001-": (992, {"background": 739, "malicious": 244, "benign": 9}),
    "slips-": (766, {"malicious": 719, "benign": 44, "unknown": 3}),
    "idps-": (7_124, {"benign": 6_796, "unknown": 328}),
}


def _shared_logs() -> list[Path]:
    return sorted(
        p
        for p in SHARED_ZEEK.iterdir()
        if p.is_file() and ("conn.log" in p.name or p.name.endswith(".labeled"))
    )


@pytest.mark.skipif(not SHARED_ZEEK.is_dir(), reason="shared/data/zeek is not present")
def test_shared_zeek_captures_read_completely():
    logs = _shared_logs()
    assert len(logs) == len(SHARED_EXPECTED)
    for path in logs:
        (prefix,) = [p for p in SHARED_EXPECTED if path.name.startswith(p)]
        rows, label_counts = SHARED_EXPECTED[prefix]
        assert detect_format(path) == "zeek-tsv"
        table = read_log(path)  # raises if any row fails
        assert len(table) == rows, path.name
        label, detail = label_columns(table)
        assert (label, detail) == ("label", "detailedlabel")
        counts = collections.Counter(r[label].lower() for r in table.records)
        assert counts == label_counts, path.name
        assert set(counts) <= {"benign", "malicious", "background", "unknown"}
        for record in table.records:
            assert type(record["ts"]) is float and record["uid"].startswith("C")
            assert type(record["id.orig_p"]) is int and type(record["id.resp_p"]) is int


def test_read_progress_speaks_once_per_step_crossed(capsys):
    from trainer.readers import read_progress

    progress = read_progress("evaluate", every=10)
    for read in (4, 8, 12, 25, 29, 30, 64):
        progress(read)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"evaluate: read {n:,} records ..." for n in (12, 25, 30, 64)]
