"""stream_od.arg_types: numbers no run can mean are refused when the command line is read."""

from __future__ import annotations

import argparse

import pytest

from stream_od import arg_types as t
from stream_od.demo import register


@pytest.mark.parametrize(
    "kind,good,bad",
    [
        (t.positive_int, ["1", "400000"], ["0", "-1", "1.5", "x"]),
        (t.non_negative_int, ["0", "7"], ["-1", "nan"]),
        (t.positive_float, ["1e-4", "3"], ["0", "-1", "nan", "inf", "x"]),
        (t.share, ["0", "0.5", "1"], ["-0.1", "1.01", "nan"]),
        (t.percent, ["0", "3", "100"], ["-1", "101", "inf"]),
        (t.port, ["1", "9108", "65535"], ["0", "65536", "-1"]),
        (t.records_per_second, ["0.001", "3000"], ["0", "1e-300", "nan", "inf"]),
    ],
)
def test_each_type_takes_what_a_run_can_mean_and_refuses_the_rest(kind, good, bad):
    for text in good:
        kind(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            kind(text)


@pytest.mark.parametrize(
    "flag,value",
    [("--count", "0"), ("--rate", "nan"), ("--attack-ratio", "150"), ("--metrics-port", "70000")],
)
def test_the_demo_refuses_a_bad_number_before_training_anything(capsys, flag, value):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["demo", f"{flag}={value}"])
    assert stop.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err
