"""``trainer.report.check_columns``: a log the schema cannot score is refused before anything is
scored, with the field's name; and ``train`` / ``evaluate`` say so on a real Zeek TSV log."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_od.schema import load_schema
from tests.trainer.test_site import _run, write_log, zeek_records
from trainer.report import check_columns

#: Zeek's conn.log numbers, and the round-trip time a site's own script adds (``conn.rtt``),
#: which this schema cannot do without
NEEDS_RTT = """\
name = "needs-rtt"
time_field = "ts"
label_fields = ["label", "detailedlabel"]

[[fields]]
name = "duration"
missing = "default"
default = 0

[[fields]]
name = "orig_bytes"
missing = "default"
default = 0

[[fields]]
name = "rtt"
path = "conn.rtt"
missing = "reject"
"""


@pytest.fixture
def schema(tmp_path):
    path = tmp_path / "needs-rtt.toml"
    path.write_text(NEEDS_RTT)
    return load_schema(path)


def test_a_required_field_no_record_has_is_named(schema):
    records = [{"ts": 1.0, "duration": 0.5, "orig_bytes": 10}] * 3
    with pytest.raises(ValueError, match=r"log\.json: no record has 'conn.rtt'.*\(field 'rtt'\)"):
        check_columns(schema, records, ["log.json"])


def test_a_required_field_unset_in_every_record_is_named_too(schema):
    """Zeek's TSV writes an unset field as ``-``, which the reader makes ``None``: the column
    is in the header, but no record has a value the encoder could use."""
    records = [{"ts": 1.0, "duration": 0.5, "conn.rtt": None, "conn": {"rtt": None}}] * 3
    with pytest.raises(ValueError, match="no record has 'conn.rtt'"):
        check_columns(schema, records, ["log.json"])


@pytest.mark.parametrize(
    "carrier",
    [{"conn": {"rtt": 0.02}}, {"conn.rtt": 0.02}, {"conn_rtt": 0.02}],
    ids=["nested", "dotted key", "underscored key"],
)
def test_a_required_field_one_record_has_passes_wherever_the_encoder_finds_it(schema, carrier):
    records = [{"ts": 1.0, "duration": 0.5}] * 3 + [{"ts": 2.0, **carrier}]
    check_columns(schema, records, ["log.json"])


def test_records_with_none_of_the_fields_are_named_as_another_kind(schema):
    records = [{"@timestamp": "2026-12-07T00:00:00Z", "message": "{}"}] * 4
    with pytest.raises(ValueError, match="none of the first 4 records carries any of the 3"):
        check_columns(schema, records, ["log.json"])


def _zeek_tsv(path: Path, records: list[dict], fields: list[str]) -> str:
    """A conn log as Zeek's ASCII writer writes it: the columns named by ``#fields``."""
    types = {"ts": "time", "duration": "interval", "orig_bytes": "count"}
    lines = [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#fields\t" + "\t".join(fields),
        "#types\t" + "\t".join(types.get(f, "string") for f in fields),
    ]
    for r in records:
        lines.append("\t".join("-" if r.get(f) is None else str(r[f]) for f in fields))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_train_and_evaluate_stop_on_a_tsv_log_whose_header_lacks_the_field(
    schema, tmp_path, capsys
):
    records = zeek_records(300, 20, seed=3)
    fields = ["ts", "uid", "duration", "orig_bytes", "label", "detailedlabel"]
    log = _zeek_tsv(tmp_path / "conn.log", records, fields)
    schema_file = str(tmp_path / "needs-rtt.toml")
    args = ["--data", log, "--schema", schema_file, "--detector", "mahalanobis", "--quiet"]
    assert _run(["train", *args, "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "no record has 'conn.rtt', which schema 'needs-rtt' requires (field 'rtt')" in err
    assert not (tmp_path / "x").exists()

    with_rtt = [{**r, "conn": {"rtt": 0.01 * (i % 7)}} for i, r in enumerate(records)]
    good = write_log(tmp_path / "conn.json", with_rtt)
    # synthetic rows: the gate's alert rate is not what this test is about
    train_good = [good if a == log else a for a in args] + ["--max-alert-rate", "0.5"]
    assert _run(["train", *train_good, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert _run(["evaluate", "--artifact", str(tmp_path / "a"), "--data", log, "--no-plots"]) == 1
    assert "no record has 'conn.rtt'" in capsys.readouterr().err
