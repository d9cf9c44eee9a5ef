"""The trainer's number flags refuse values no run can mean, when the command line is read:
exit 2 with the flag named, no artifact written (argparse's own error path)."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from trainer import cli

FIXTURE = str(pathlib.Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz")
LOG = str(pathlib.Path(__file__).parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.log")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--epochs", "-1"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--batch-size", "-5"),
        ("--learning-rate", "-1"),
        ("--learning-rate", "nan"),
        ("--learning-rate", "0"),
        ("--seed", "-1"),
        ("--n-train", "0"),
        ("--early-stopping", "-1"),
        ("--mixture-components", "-2"),
        ("--max-alert-rate", "-1"),
        ("--min-auroc", "2"),
        ("--min-f1", "inf"),
        ("--n-records", "0"),
    ],
)
def test_a_value_no_run_can_mean_is_refused_naming_the_flag(tmp_path, capsys, flag, value):
    out = tmp_path / "art"
    with pytest.raises(SystemExit) as stop:
        _parse(["train", "--data", FIXTURE, "--out", str(out), f"{flag}={value}"])
    assert stop.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err
    assert not out.exists()


def test_values_a_run_can_mean_pass():
    args = _parse(
        ["train", "--data", FIXTURE, "--out", "x", "--epochs", "3", "--learning-rate", "3e-3"]
        + ["--seed", "0", "--early-stopping", "0", "--mixture-components", "0"]
        + ["--min-auroc", "0.9", "--max-alert-rate", "0.02"]
    )
    assert (args.epochs, args.learning_rate, args.mixture_components) == (3, 3e-3, 0)
    assert (args.min_auroc, args.max_alert_rate) == (0.9, 0.02)


def test_a_target_alert_rate_of_zero_is_refused_not_taken_for_the_default(tmp_path, capsys):
    argv = ["train", "--data", LOG, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    args = _parse([*argv, "--target-alert-rate", "0", "--out", str(tmp_path / "art"), "--quiet"])
    assert args.func(args) != 0
    assert "--target-alert-rate must be in (0, 0.5)" in capsys.readouterr().err


def test_an_out_that_cannot_be_an_artifact_directory_is_refused_before_training(tmp_path, capsys):
    """Refused at once, not after the fit (or with a NotADirectoryError traceback)."""
    (tmp_path / "file.txt").write_text("")
    cases = {
        tmp_path / "file.txt": "is a file, not a directory",
        tmp_path / "file.txt" / "art": "not a writable directory",
    }
    for out, message in cases.items():
        args = _parse(["train", "--data", FIXTURE, "--detector", "mahalanobis", "--out", str(out)])
        assert args.func(args) == 2
        assert message in capsys.readouterr().err
