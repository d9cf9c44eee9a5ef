"""stream_od.demo's checks before it starts anything (the whole run: tests/integration)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stream_od.demo import register

LOG = Path(__file__).resolve().parent / "fixtures" / "logs" / "zeek-conn-labeled.log"


def test_a_directory_given_as_data_is_named_as_one_before_kafka_is_asked(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["demo", "--schema", "zeek-conn", "--data", str(LOG), "--replay-data", str(tmp_path)]
        + ["--bootstrap-servers", "127.0.0.1:1"]
    )
    assert args.func(args) == 2
    out = capsys.readouterr()
    assert f"{tmp_path}: a directory; name the files in it" in out.out + out.err
