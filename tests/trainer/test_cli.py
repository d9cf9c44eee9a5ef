"""Quick end-to-end: train -> artifact -> evaluate on a small KDD sample."""

import argparse
import json
import pathlib

import pytest

from stream_od.artifact import Artifact
from trainer import cli

FIXTURE = str(pathlib.Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz")


def _run(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize(
    "detector,extra,floor",
    [
        ("mahalanobis", [], 0.95),
        ("vaegmm", ["--epochs", "3", "--batch-size", "256", "--learning-rate", "3e-3"], 0.9),
    ],
)
def test_train_then_evaluate(tmp_path, capsys, detector, extra, floor):
    out = tmp_path / "art"
    rc = _run(
        [
            "train",
            "--data",
            FIXTURE,
            "--detector",
            detector,
            "--out",
            str(out),
            "--n-train",
            "3000",
            "--quiet",
            *extra,
        ]
    )
    assert rc == 0
    art = Artifact.load(out)
    assert art.detector_kind == detector and art.metrics["test_batch"]["auroc"] > floor
    rc = _run(
        ["evaluate", "--artifact", str(out), "--data", FIXTURE, "--out", str(tmp_path / "rep")]
    )
    assert rc == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["full"]["n"] == 4000 and rep["full"]["auroc"] > floor - 0.1  # 3-epoch model
    for png in ("scores.png", "roc.png", "confusion.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    if detector != "mahalanobis":
        assert (tmp_path / "rep" / "latent.png").is_file()


def test_train_refuses_non_empty_out(tmp_path, capsys):
    (tmp_path / "x").write_text("")
    assert (
        _run(["train", "--data", FIXTURE, "--detector", "mahalanobis", "--out", str(tmp_path)]) == 2
    )


def test_bad_data_path(tmp_path, capsys):
    assert (
        _run(
            [
                "train",
                "--data",
                "/nope.gz",
                "--detector",
                "mahalanobis",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 1
    )
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name,kind,schema",
    [
        ("zeek-conn-labeled.log", "Zeek TSV", "zeek-conn"),
        ("zeek-conn-labeled.json", "Zeek JSON", "zeek-conn"),
        ("suricata-eve.json", "Suricata EVE", "suricata-flow"),
    ],
)
def test_a_sensor_log_without_schema_is_told_which_schema_to_give(
    tmp_path, capsys, name, kind, schema
):
    """Without --schema, train runs the KDD reference protocol, whose reader would call a
    sensor log a bad KDD file; the log is named instead, with the schema it needs."""
    log = str(pathlib.Path(__file__).parents[1] / "fixtures" / "logs" / name)
    argv = ["train", "--data", log, "--detector", "mahalanobis", "--out", str(tmp_path / "a")]
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {log} is a {kind} log: give its schema, --schema {schema}" in err
    assert not (tmp_path / "a").exists()


def test_score_warns_when_every_record_is_a_dead_letter(tmp_path, capsys):
    """A KDD model given a Zeek log: every record lacks its fields.  Still scored as the
    worker would (dead letters, exit 0), but said plainly."""
    art = tmp_path / "kdd"
    train = ["train", "--data", FIXTURE, "--detector", "mahalanobis", "--n-train", "3000"]
    assert _run([*train, "--out", str(art), "--quiet"]) == 0
    log = str(pathlib.Path(__file__).parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.log")
    capsys.readouterr()
    out = str(tmp_path / "s.jsonl")
    assert _run(["score", "--artifact", str(art), "--data", log, "--out", out]) == 0
    err = capsys.readouterr().err
    assert f"warning: all 40 records are dead letters (the reasons are in {out})" in err
    assert _run(["score", "--artifact", str(art), "--data", FIXTURE, "--out", out]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_schema_that_cannot_load_is_named_before_the_data_is_read(tmp_path, capsys):
    png = tmp_path / "img.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    for schema, message in [
        (str(png), f"{png}: not a schema (not UTF-8 text"),
        (str(tmp_path), "is a directory: name a TOML or JSON file"),
        ("nosuch", "schema 'nosuch': not a built-in schema"),
    ]:
        argv = ["train", "--data", FIXTURE, "--schema", schema, "--detector", "mahalanobis"]
        assert _run([*argv, "--out", str(tmp_path / "a"), "--quiet"]) == 1
        assert message in capsys.readouterr().err


def test_evaluate_of_an_artifact_named_dot_writes_its_report_beside_it(
    tmp_path, capsys, monkeypatch
):
    art = tmp_path / "model"
    train = ["train", "--data", FIXTURE, "--detector", "mahalanobis", "--n-train", "3000"]
    assert _run([*train, "--out", str(art), "--quiet"]) == 0
    monkeypatch.chdir(art)
    assert _run(["evaluate", "--artifact", ".", "--data", FIXTURE, "--no-plots"]) == 0
    assert (tmp_path / "model-report" / "report.json").is_file()


@pytest.mark.parametrize(
    "flags", [("--n-train", "5"), ("--percentile", "99"), ("--features", "duration")]
)
def test_kdd_flags_on_sensor_training_are_refused_not_ignored(tmp_path, capsys, flags):
    log = str(pathlib.Path(__file__).parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.log")
    argv = ["train", "--data", log, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    assert _run([*argv, *flags, "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert f"{flags[0]} is for the KDD reference protocol" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_evaluate_again_into_its_report_directory_leaves_no_earlier_plots(tmp_path, capsys):
    art, rep = tmp_path / "model", tmp_path / "rep"
    train = ["train", "--data", FIXTURE, "--detector", "mahalanobis", "--n-train", "3000"]
    assert _run([*train, "--out", str(art), "--quiet"]) == 0
    evaluate = ["evaluate", "--artifact", str(art), "--data", FIXTURE, "--out", str(rep)]
    assert _run(evaluate) == 0
    assert (rep / "scores.png").is_file()
    (rep / "notes.txt").write_text("mine")
    assert _run([*evaluate, "--no-plots"]) == 0
    assert sorted(p.name for p in rep.iterdir()) == ["notes.txt", "report.json"]
