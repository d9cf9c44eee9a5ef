"""Training on a site's own traffic (trainer.site) and the CLI around it: train, evaluate,
score, on synthetic Zeek conn logs written as Zeek's JSON writer writes them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from stream_od.schema import load_schema
from trainer import cli
from trainer.labels import MALICIOUS, NORMAL, UNLABELLED, find_labels
from trainer.readers import read_logs
from trainer.site import (
    SiteConfig,
    encode,
    label_metrics,
    network_params,
    time_split,
    train_site,
)


def zeek_records(
    n_normal: int, n_attack: int, *, seed: int, t0: float = 1.6e9, labelled: bool = True
) -> list[dict]:
    """Outgoing answered connections (benign) and inbound unanswered SYNs (a scan): the
    scan rows lack duration, bytes and service, as Zeek leaves them unset."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_normal):
        svc = ["http", "ssl", "dns"][i % 3]
        out.append(
            {
                "ts": t0 + i,
                "uid": f"C{seed}n{i}",
                "id.orig_h": "10.0.0.5",
                "id.orig_p": int(rng.integers(40000, 60000)),
                "id.resp_h": "192.0.2.10",
                "id.resp_p": {"http": 80, "ssl": 443, "dns": 53}[svc],
                "proto": "udp" if svc == "dns" else "tcp",
                "service": svc,
                "duration": float(rng.exponential(0.5)),
                "orig_bytes": int(rng.integers(50, 2000)),
                "resp_bytes": int(rng.integers(100, 50000)),
                "conn_state": "SF",
                "local_orig": True,
                "local_resp": False,
                "missed_bytes": 0,
                "history": "ShADadFf" if svc != "dns" else "Dd",
                "orig_pkts": int(rng.integers(2, 20)),
                "orig_ip_bytes": 900,
                "resp_pkts": int(rng.integers(2, 40)),
                "resp_ip_bytes": 5000,
                "tunnel_parents": [],
                **({"label": "Benign", "detailedlabel": "web"} if labelled else {}),
            }
        )
    for i in range(n_attack):
        out.append(
            {
                "ts": t0 + i + 0.5,
                "uid": f"C{seed}a{i}",
                "id.orig_h": "203.0.113.9",
                "id.orig_p": int(rng.integers(1024, 65000)),
                "id.resp_h": "10.0.0.5",
                "id.resp_p": int(rng.integers(1, 10000)),
                "proto": "tcp",
                "conn_state": "S0",
                "local_orig": False,
                "local_resp": True,
                "missed_bytes": 0,
                "history": "S",
                "orig_pkts": 1,
                "orig_ip_bytes": 40,
                "resp_pkts": 0,
                "resp_ip_bytes": 0,
                "tunnel_parents": [],
                **(
                    {"label": "Malicious", "detailedlabel": "External-Attack-to-Device"}
                    if labelled
                    else {}
                ),
            }
        )
    return out


def write_log(path: Path, records: list[dict]) -> str:
    """Zeek's JSON writer: one object per line, in the order connections end (not ts)."""
    order = np.random.default_rng(0).permutation(len(records))
    path.write_bytes(b"\n".join(orjson.dumps(records[i]) for i in order) + b"\n")
    return str(path)


def quiet_mahalanobis(records: list[dict], *, data: str = "synthetic", **config) -> Artifact:
    """``train_site`` with the Mahalanobis baseline and no output: for the tests that read
    what it stores."""
    return train_site(
        SiteConfig(data=[data], detector="mahalanobis", **config),
        records,
        progress=False,
        log=lambda _: None,
    )


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_labels_normal_malicious_and_unlabelled_rows():
    schema = load_schema("zeek-conn")
    rows = [
        {"label": "Benign"},
        {"label": "Malicious"},
        {"label": "Background"},
        {"label": "normal."},
        {"label": "-"},
        {},
    ]
    labels = find_labels(rows, schema)
    assert labels.field == "label"
    assert labels.kind.tolist() == [NORMAL, MALICIOUS, UNLABELLED, NORMAL, UNLABELLED, UNLABELLED]
    unlabelled = find_labels([{"ts": 1}], schema)
    assert not unlabelled.labelled and unlabelled.kind.tolist() == [NORMAL]


def test_the_split_is_by_time_and_keeps_malicious_rows_apart():
    """The normal rows cut in time order; every malicious row, and only those, in a part of its
    own, so none is fitted on or thresholded on, and all are scored for recall."""
    records = zeek_records(1000, 50, seed=1)
    records.sort(key=lambda r: r["ts"])
    split = time_split(find_labels(records, load_schema("zeek-conn")), SiteConfig(data=[]))
    assert (split.fit.size, split.threshold.size, split.validation.size) == (700, 150, 150)
    ts = np.array([r["ts"] for r in records])
    assert (
        ts[split.fit].max()
        < ts[split.threshold].min()
        <= ts[split.threshold].max()
        < ts[split.validation].min()
    )
    # Every malicious row, and only those, is kept apart; no row is in two parts.
    malicious = {i for i, r in enumerate(records) if r["label"] == "Malicious"}
    assert len(malicious) == 50 and split.malicious.size == 50
    assert set(split.malicious.tolist()) == malicious
    normal = np.concatenate([split.fit, split.threshold, split.validation]).tolist()
    assert len(set(normal)) == 1000 and set(normal).isdisjoint(malicious)
    assert set(normal) | malicious == set(range(len(records)))


def test_too_few_normal_rows_is_a_clear_error():
    records = zeek_records(100, 0, seed=1)
    with pytest.raises(ValueError, match="too few"):
        time_split(find_labels(records, load_schema("zeek-conn")), SiteConfig(data=[]))


def test_small_data_gets_enough_optimizer_steps():
    p = network_params(SiteConfig(data=[]), 1000)
    assert p["batch_size"] == 62 and p["epochs"] * -(-1000 // 62) >= 3000
    big = network_params(SiteConfig(data=[]), 400_000)
    assert big["batch_size"] == 1024 and big["epochs"] == 50


def test_label_metrics():
    m = label_metrics(
        np.array([0.0, 1.0, 2.0, 3.0]),
        np.array([2.5, 5.0]),
        2.0,
        np.array(["scan", "c2"], dtype=object),
    )
    assert m["alert_rate_normal"] == 0.25 and m["recall"] == 1.0 and m["roc_auc"] == 0.875
    assert m["recall_by_detail"] == {"c2": {"n": 1, "recall": 1.0}, "scan": {"n": 1, "recall": 1.0}}


def test_train_site_sets_the_threshold_for_the_target_alert_rate():
    records = sorted(zeek_records(3000, 100, seed=2), key=lambda r: r["ts"])
    art = quiet_mahalanobis(records, target_alert_rate=0.05)
    h = art.metrics["holdout"]
    assert 0.0 <= h["alert_rate"] <= 0.15  # held out by time: near the 5 % asked for
    assert h["recall"] == 1.0 and h["roc_auc"] > 0.99
    assert art.schema.fitted and "service=http" in art.feature_names
    assert art.training["rows"]["fit"] == 2100 and art.training["label_field"] == "label"
    # held-out normal rows are all of kinds the fit rows had: no unseen values, per field
    assert art.metrics["unseen_category_share"] == {
        f: 0.0 for f in ("proto", "service", "conn_state", "history", "id.resp_p")
    }


@pytest.mark.parametrize("never_varied", ["unit", "rarest"])
def test_never_varied_sets_the_scale_of_the_0_1_columns_constant_in_the_fit_rows(never_varied):
    records = sorted(zeek_records(1000, 20, seed=4), key=lambda r: r["ts"])
    art = quiet_mahalanobis(records, never_varied=never_varied)
    names, scale = art.feature_names, art.standardizer.scale_
    n_fit = art.training["rows"]["fit"]
    assert art.training["never_varied"] == never_varied  # the artifact says how it was scaled
    # every benign row is local-to-remote: both direction columns never varied
    p = 1 / (n_fit + 1)
    expected = 1.0 if never_varied == "unit" else np.sqrt(p * (1 - p))
    for name in ("local_orig", "local_resp", "service=<other>", "duration:missing"):
        assert scale[names.index(name)] == pytest.approx(expected, rel=1e-12), name
    # a numeric column is scaled by its spread either way
    assert scale[names.index("orig_bytes")] != 1.0
    # an inbound record moves both direction columns by the weight of a value seen once
    scan = next(r for r in records if r["label"] == "Malicious")
    inbound = art.standardizer.transform(encode([scan], art.schema)[0])
    flipped = abs(inbound[0, names.index("local_resp")])
    assert flipped == pytest.approx(1.0 if never_varied == "unit" else (n_fit + 1) / np.sqrt(n_fit))


def test_a_field_no_fit_record_had_is_held_so_a_sensor_that_starts_writing_it_moves_no_score():
    """Zeek leaves local_orig/local_resp unset while Site::local_nets is empty; a site that
    sets it later must not see every record move by a never-seen value and alert."""
    records = sorted(zeek_records(1000, 20, seed=5), key=lambda r: r["ts"])
    direction = ("local_orig", "local_resp")
    unset = [{k: v for k, v in r.items() if k not in direction} for r in records]
    with pytest.warns(UserWarning, match="no training record has 'local_"):
        art = quiet_mahalanobis(unset)
    assert art.training["absent_fields"] == list(direction)
    names = art.feature_names
    held = [names[i] for i in art.standardizer.held_]
    assert held == ["local_orig", "local_orig:missing", "local_resp", "local_resp:missing"]
    benign = [r for r in records if r["label"] == "Benign"]
    scores_unset = art.score(encode([unset[records.index(r)] for r in benign], art.schema)[0])
    scores_set = art.score(encode(benign, art.schema)[0])  # the sensor now writes them
    assert np.array_equal(scores_set, scores_unset)
    loaded = Artifact.from_files(art.to_files(), "test")  # as a worker loads it
    assert np.array_equal(loaded.score(encode(benign, loaded.schema)[0]), scores_set)
    assert np.mean(scores_set > art.threshold) < 0.05
    # without holding them, every one of those records would have moved far past the threshold
    art.standardizer.held_ = np.empty(0, dtype=np.intp)
    moved = art.standardizer.transform(encode(benign, art.schema)[0])
    assert np.mean(art.detector.score(moved) > art.threshold) == 1.0
    # trained on records that have them, nothing is held
    assert quiet_mahalanobis(records).training["absent_fields"] == []


def test_an_unknown_never_varied_is_refused():
    with pytest.raises(ValueError, match="never_varied must be one of"):
        SiteConfig(data=["x"], never_varied="often").check()


def test_train_site_stores_the_held_out_share_of_values_the_fit_rows_did_not_have():
    records = sorted(zeek_records(1000, 0, seed=3), key=lambda r: r["ts"])
    for r in records[850:]:  # the last 15 % by time: the validation part
        r["service"] = "smb"
    art = quiet_mahalanobis(records)
    shares = art.metrics["unseen_category_share"]
    assert shares["service"] == pytest.approx(150 / 300)  # threshold + validation rows
    assert shares["proto"] == 0.0


def test_train_site_stores_the_held_out_share_of_rows_that_lacked_each_field():
    """The baseline of the worker's stream_od_missing_field_records_total."""
    records = sorted(zeek_records(1000, 0, seed=3), key=lambda r: r["ts"])
    for r in records[900:]:  # the last 100 rows by time lack resp_pkts
        del r["resp_pkts"]
    art = quiet_mahalanobis(records)
    shares = art.metrics["missing_field_share"]
    assert set(shares) == set(art.schema.missing_columns)  # every field with an indicator
    assert shares["resp_pkts"] == pytest.approx(100 / 300)  # threshold + validation rows
    assert shares["orig_pkts"] == 0.0


def test_evaluate_reports_the_share_of_values_unseen_in_training(tmp_path):
    from trainer.report import evaluate_logs

    day2 = zeek_records(1000, 50, seed=5, t0=1.7e9)
    for r in day2[:100]:  # a tenth of the benign rows speak a service day 1 never had
        r["service"] = "smb"
    art = quiet_mahalanobis(
        sorted(zeek_records(1000, 0, seed=3), key=lambda r: r["ts"]), data="day1"
    )
    art.save(tmp_path / "art")
    rep = evaluate_logs(
        tmp_path / "art", [write_log(tmp_path / "day2.log", day2)], tmp_path / "rep", plots=False
    )
    assert rep["unseen_category_share_normal"]["service"] == pytest.approx(0.1)
    assert rep["unseen_category_share_normal"]["proto"] == 0.0
    assert rep["unseen_category_share_training"] == art.metrics["unseen_category_share"]


def test_cli_train_evaluate_score_on_zeek_json_logs(tmp_path, capsys):
    train_log = write_log(tmp_path / "day1.log", zeek_records(2000, 100, seed=3))
    test_log = write_log(tmp_path / "day2.log", zeek_records(1000, 200, seed=4, t0=1.7e9))
    art_dir = tmp_path / "art"
    assert (
        _run(
            [
                "train",
                "--data",
                train_log,
                "--schema",
                "zeek-conn",
                "--detector",
                "mahalanobis",
                "--target-alert-rate",
                "0.02",
                "--out",
                str(art_dir),
                "--quiet",
            ]
        )
        == 0
    )
    art = Artifact.load(art_dir)
    assert art.schema.name == "zeek-conn" and art.training["protocol"] == "site"

    assert (
        _run(
            [
                "evaluate",
                "--artifact",
                str(art_dir),
                "--data",
                test_log,
                "--out",
                str(tmp_path / "rep"),
            ]
        )
        == 0
    )
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("roc_auc", "pr_auc", "alert_rate_normal", "recall", "recall_by_detail"):
        assert key in rep, key
    assert rep["n_normal"] == 1000 and rep["n_malicious"] == 200 and rep["roc_auc"] > 0.99
    assert rep["recall_by_detail"]["External-Attack-to-Device"]["n"] == 200
    lo, hi = rep["alert_rate_normal_interval"]
    assert lo <= rep["alert_rate_normal"] <= hi < 1.0
    for png in ("scores.png", "roc.png", "confusion.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000

    out = tmp_path / "scores.jsonl"
    assert _run(["score", "--artifact", str(art_dir), "--data", test_log, "--out", str(out)]) == 0
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [x["index"] for x in lines] == list(range(1200))
    assert all("score" in x for x in lines)  # no well-formed record is refused
    table = read_logs([test_log])
    enc = art.encoder.encode(
        __import__("stream_od.records", fromlist=["x"]).field_values(table.records, art.schema),
        len(table),
    )
    np.testing.assert_allclose([x["score"] for x in lines], art.score(enc.X), rtol=1e-12)
    assert sum(x["alert"] for x in lines) >= 200


def test_unlabelled_traffic_trains_with_every_row_as_normal(tmp_path, capsys):
    log = write_log(tmp_path / "site.log", zeek_records(1500, 0, seed=5, labelled=False))
    assert (
        _run(
            [
                "train",
                "--data",
                log,
                "--schema",
                "zeek-conn",
                "--detector",
                "mahalanobis",
                "--out",
                str(tmp_path / "a"),
                "--quiet",
            ]
        )
        == 0
    )
    art = Artifact.load(tmp_path / "a")
    assert art.training["label_field"] is None and art.training["rows"]["fit"] == 1050
    assert "roc_auc" not in art.metrics["holdout"]
    assert "unlabelled: all taken as normal" in capsys.readouterr().err


def test_train_on_more_records_than_max_rows_takes_a_sample_and_says_so(tmp_path, capsys):
    """Logs bigger than ``--max-rows`` are read one record at a time and a uniform sample of
    them trained on (labelled rows in their proportions); the artifact records how."""
    records = zeek_records(3000, 600, seed=5)
    logs = [
        write_log(tmp_path / "day1.log", records[:1800] + records[3000:3300]),
        write_log(tmp_path / "day2.log", records[1800:3000] + records[3300:]),
    ]
    common = ["train", "--data", *logs, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    assert _run([*common, "--out", str(tmp_path / "a"), "--quiet", "--max-rows", "1200"]) == 0
    err = capsys.readouterr().err
    assert (
        "read 3,600 records (zeek-json) from 2 file(s); training on a uniform random sample of "
        "1,200 of the 3,600 records (--max-rows 1,200, sampler seed 0)"
    ) in err, err
    art = Artifact.load(tmp_path / "a")
    assert art.training["sample"] == {
        "how": "uniform",
        "records": 1200,
        "of": 3600,
        "max_rows": 1200,
    }
    rows = art.training["rows"]
    assert sum(rows.values()) == 1200
    assert 140 < rows["malicious"] < 260  # a sixth of the records are attacks: 200 expected

    assert _run([*common, "--out", str(tmp_path / "b"), "--quiet", "--max-rows", "0"]) == 0
    assert "training on all 3,600 records" in capsys.readouterr().err
    whole = Artifact.load(tmp_path / "b")
    assert whole.training["sample"] == {"how": "all", "records": 3600, "of": 3600, "max_rows": None}
    assert whole.training["rows"]["malicious"] == 600


def test_a_schema_with_traffic_windows_trains_on_the_most_recent_records(tmp_path, capsys):
    """A uniform sample would thin every window's counts; the most recent records keep them
    whole."""
    log = write_log(tmp_path / "site.log", zeek_records(2000, 0, seed=5, labelled=False))
    argv = ["train", "--data", log, "--schema", "zeek-conn-windows", "--detector", "mahalanobis"]
    assert _run([*argv, "--out", str(tmp_path / "a"), "--quiet", "--max-rows", "1500"]) == 0
    assert "training on the most recent of 1,500 of the 2,000 records" in capsys.readouterr().err
    art = Artifact.load(tmp_path / "a")
    assert art.training["sample"]["how"] == "newest"


def test_max_rows_on_the_kdd_reference_protocol_is_refused(tmp_path, capsys):
    argv = ["train", "--data", "kdd.gz", "--out", str(tmp_path / "a"), "--max-rows", "1000"]
    assert _run(argv) == 2
    assert "--max-rows is for sensor logs" in capsys.readouterr().err


def test_train_takes_never_varied_from_the_command_line(tmp_path):
    log = write_log(tmp_path / "site.log", zeek_records(1500, 0, seed=5, labelled=False))
    common = ["train", "--data", log, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    assert _run([*common, "--out", str(tmp_path / "d"), "--quiet"]) == 0
    assert _run([*common, "--out", str(tmp_path / "u"), "--quiet", "--never-varied", "unit"]) == 0
    default, unit = Artifact.load(tmp_path / "d"), Artifact.load(tmp_path / "u")
    assert default.training["never_varied"] == "rarest" and unit.training["never_varied"] == "unit"
    i = default.feature_names.index("local_resp")  # every row local-to-remote: never varied
    assert unit.standardizer.scale_[i] == 1.0 and default.standardizer.scale_[i] < 0.05


def test_never_varied_on_the_kdd_reference_protocol_is_refused(tmp_path, capsys):
    argv = ["train", "--data", "kdd.gz", "--out", str(tmp_path / "a"), "--never-varied", "unit"]
    assert _run(argv) == 2
    assert "--never-varied is for sensor logs" in capsys.readouterr().err


def test_quality_gate_on_the_held_out_alert_rate(tmp_path, capsys):
    log = write_log(tmp_path / "site.log", zeek_records(1500, 50, seed=6))
    rc = _run(
        [
            "train",
            "--data",
            log,
            "--schema",
            "zeek-conn",
            "--detector",
            "mahalanobis",
            "--out",
            str(tmp_path / "a"),
            "--quiet",
            "--target-alert-rate",
            "0.05",
            "--max-alert-rate",
            "0.0",
            "--publish-dir",
            str(tmp_path / "reg"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 3 and "held-out alert rate" in err and "nothing published" in err
    assert not (tmp_path / "reg").exists()


@pytest.mark.parametrize(
    "schema_toml, message",
    [
        ('[[fields]]\nname = "x"\nkind = "blob"', "field 'x': unknown kind 'blob'"),
        ('[[fields]]\nname = "x"\npath = "a..b"', "field 'x': path 'a..b' can never match"),
        ('[[fields]]\nname = "x"\n[[fields]]\nname = "x"', "duplicate field name 'x'"),
        (
            '[[fields]]\nname = "flow.bytes"\nmissing = "default"\ndefault = 0',
            "field 'flow.bytes': no training record has",
        ),
    ],
)
def test_a_bad_schema_stops_train_naming_the_field(tmp_path, capsys, schema_toml, message):
    (tmp_path / "s.toml").write_text(schema_toml + "\n")
    log = write_log(tmp_path / "site.log", zeek_records(400, 0, seed=7))
    rc = _run(
        [
            "train",
            "--data",
            log,
            "--schema",
            str(tmp_path / "s.toml"),
            "--detector",
            "mahalanobis",
            "--out",
            str(tmp_path / "a"),
            "--quiet",
        ]
    )
    assert rc in (1, 2) and message in capsys.readouterr().err


def test_evaluate_names_a_required_field_the_logs_lack(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(
        'label_fields = ["label"]\n[[fields]]\nname = "orig_pkts"\n[[fields]]\nname = "resp_pkts"\n'
    )
    log = write_log(tmp_path / "a.log", zeek_records(400, 10, seed=8))
    assert (
        _run(
            [
                "train",
                "--data",
                log,
                "--schema",
                str(tmp_path / "s.toml"),
                "--detector",
                "mahalanobis",
                "--out",
                str(tmp_path / "a"),
                "--quiet",
                "--max-alert-rate",
                "1",
            ]
        )
        == 0
    )  # two integer counts: ties, not a 1 % tail
    lacking = [
        {k: v for k, v in r.items() if k != "resp_pkts"} for r in zeek_records(100, 10, seed=9)
    ]
    other = write_log(tmp_path / "b.log", lacking)
    assert _run(["evaluate", "--artifact", str(tmp_path / "a"), "--data", other, "--no-plots"]) == 1
    assert "'resp_pkts'" in capsys.readouterr().err


def test_target_alert_rate_on_kdd_data_points_to_the_reference_protocol(tmp_path, capsys):
    kdd = str(Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz")
    assert (
        _run(["train", "--data", kdd, "--target-alert-rate", "0.01", "--out", str(tmp_path / "a")])
        == 2
    )
    assert "reference protocol" in capsys.readouterr().err


def test_train_on_sensor_records_from_a_topic(kafka_bootstrap, new_topic, tmp_path, capsys):
    """``--data-topic`` with a sensor schema: Zeek JSON records, the label in a header."""
    from confluent_kafka import Producer

    topic = new_topic(partitions=2, prefix="zeek")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    records = zeek_records(1200, 60, seed=10)
    for rec in records:
        label = rec.pop("label")
        rec.pop("detailedlabel")
        producer.produce(topic, orjson.dumps(rec), headers=[("label", label.encode())])
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
            "--schema",
            "zeek-conn",
            "--detector",
            "mahalanobis",
            "--out",
            str(tmp_path / "a"),
            "--quiet",
            "--target-alert-rate",
            "0.02",
            "--max-alert-rate",
            "1",
        ]
    )  # 180 held-out rows: the rate itself is not the point
    err = capsys.readouterr().err
    assert rc == 0, err
    art = Artifact.load(tmp_path / "a")
    assert art.training["label_field"] == "label" and art.training["rows"]["malicious"] == 60
    assert art.metrics["holdout"]["recall"] == 1.0
    assert "put in 'ts' order" in err  # partitions interleave; the split needs time order


def test_records_of_other_zeek_logs_are_skipped_by_train_evaluate_and_score(tmp_path, capsys):
    """A shipper that merges Zeek's logs into one stream names each record's log in
    ``_path``: train, evaluate and score use the conn records and skip the others, as the
    worker does, instead of learning from (or scoring) a dns record as a connection."""

    def merged(conns: list[dict], seed: int) -> list[dict]:
        dns = [
            {"ts": c["ts"] + 0.25, "uid": f"D{seed}{i}", "_path": "dns", "query": "example.com"}
            for i, c in enumerate(conns[::5])
        ]
        return [{**c, "_path": "conn"} for c in conns] + dns

    day1 = zeek_records(1500, 50, seed=11)
    day2 = zeek_records(600, 100, seed=12, t0=1.7e9)
    train_log = write_log(tmp_path / "day1.log", merged(day1, 1))
    test_log = write_log(tmp_path / "day2.log", merged(day2, 2))
    art_dir, common = tmp_path / "art", ["--schema", "zeek-conn", "--detector", "mahalanobis"]
    assert _run(["train", "--data", train_log, *common, "--out", str(art_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "310 records of another kind skipped (_path not in ['conn'])" in err, err
    art = Artifact.load(art_dir)
    assert art.training["rows"]["malicious"] == 50
    assert sum(art.training["rows"][k] for k in ("fit", "threshold", "validation")) == 1500

    rep_dir = tmp_path / "rep"
    assert (
        _run(["evaluate", "--artifact", str(art_dir), "--data", test_log, "--out", str(rep_dir)])
        == 0
    )
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["skipped_not_selected"] == 140 and rep["n_records"] == 700
    assert rep["n_normal"] == 600 and rep["refused_by_schema"] == 0

    out = tmp_path / "scores.jsonl"
    assert _run(["score", "--artifact", str(art_dir), "--data", test_log, "--out", str(out)]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["skipped"] == 140 and counts["scored"] == 700 and counts["dead_letters"] == 0
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    skipped = [x["index"] for x in lines if "skipped" in x]
    order = sorted(merged(day2, 2), key=lambda r: r["ts"])  # score's order: event time
    assert skipped == [i for i, r in enumerate(order) if r["_path"] == "dns"]


def test_train_on_tagged_zeek_records_from_one_topic_of_every_log(
    kafka_bootstrap, new_topic, tmp_path, capsys
):
    """zeek-kafka with ``send_all_active_logs`` and ``tag_json = T``: every log on one topic,
    each record wrapped in its log's name.  ``--data-topic`` trains on the conn records,
    unwrapped and in time order, and skips the others."""
    from confluent_kafka import Producer

    topic = new_topic(partitions=2, prefix="zeek-all")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    conns = zeek_records(1200, 0, seed=13, labelled=False)
    for i, rec in enumerate(conns):
        producer.produce(topic, orjson.dumps({"conn": rec}), key=str(i % 7))
        if i % 4 == 0:
            dns = {"ts": rec["ts"], "uid": rec["uid"], "query": "example.com"}
            producer.produce(topic, orjson.dumps({"dns": dns}), key=str(i % 7))
    assert producer.flush(30) == 0
    source = ["--data-topic", topic, "--n-records", "5000", "--bootstrap-servers", kafka_bootstrap]
    model = ["--schema", "zeek-conn", "--detector", "mahalanobis", "--out", str(tmp_path / "a")]
    rc = _run(["train", *source, *model, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "read 1,500 records" in err and "300 of another kind skipped" in err, err
    art = Artifact.load(tmp_path / "a")
    assert art.training["rows"]["fit"] == 840  # 70 % of the 1,200 conn records
    assert "conn_state=SF" in art.feature_names  # the records inside were read


def test_train_site_says_how_sure_the_alert_rate_is_and_when_the_data_is_too_short():
    records = sorted(zeek_records(1500, 50, seed=5), key=lambda r: r["ts"])
    lines: list[str] = []
    art = train_site(
        SiteConfig(data=["synthetic"], detector="mahalanobis", target_alert_rate=0.01),
        records,
        progress=False,
        log=lines.append,
    )
    h = art.metrics["holdout"]
    lo, hi = h["alert_rate_interval"]
    assert lo <= h["alert_rate"] <= hi and hi - lo > 0.01  # 225 validation rows: a wide interval
    lo, hi = art.metrics["threshold_alert_rate_interval"]
    assert lo <= art.metrics["threshold_alert_rate"] <= hi
    needed = art.metrics["alert_rate_rows_needed"]
    assert art.training["rows"]["threshold"] < needed
    warning = [line for line in lines if "warning: too few normal rows" in line]
    assert len(warning) == 1 and f"about {needed:,}" in warning[0]

    lines.clear()
    records = sorted(zeek_records(8000, 50, seed=6), key=lambda r: r["ts"])
    train_site(
        SiteConfig(data=["synthetic"], detector="mahalanobis", target_alert_rate=0.01),
        records,
        progress=False,
        log=lines.append,
    )
    assert not any("warning" in line for line in lines)  # 1,200 rows per part pin 1 %


def eve_records(n_normal: int, n_attack: int, *, seed: int, t0: float = 1.6e9) -> list[dict]:
    """A whole eve.json as Suricata writes it: flow events (labelled answered outgoing
    flows, and unanswered inbound SYNs) among dns, http and stats events."""
    import datetime as dt

    rng = np.random.default_rng(seed)

    def when(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")

    out: list[dict] = []
    for i in range(n_normal + n_attack):
        attack, t = i >= n_normal, t0 + i
        pkts = (1, 0) if attack else (int(rng.integers(2, 20)), int(rng.integers(2, 40)))
        out.append(
            {
                "timestamp": when(t + 1),
                "flow_id": int(seed * 10**9 + i),
                "event_type": "flow",
                "src_ip": "203.0.113.9" if attack else "10.0.0.5",
                "src_port": int(rng.integers(1024, 65000)),
                "dest_ip": "10.0.0.5" if attack else "192.0.2.10",
                "dest_port": int(rng.integers(1, 10000)) if attack else 443,
                "proto": "TCP",
                **({} if attack else {"app_proto": "tls"}),
                "flow": {
                    "pkts_toserver": pkts[0],
                    "pkts_toclient": pkts[1],
                    "bytes_toserver": 60 * pkts[0],
                    "bytes_toclient": 900 * pkts[1],
                    "start": when(t),
                    "end": when(t + 1),
                    "age": 0 if attack else 1,
                    "state": "new" if attack else "closed",
                    "reason": "timeout",
                    "alerted": False,
                },
                "tcp": (
                    {"tcp_flags": "02", "syn": True, "state": "syn_sent"}
                    if attack
                    else {
                        **dict.fromkeys(("syn", "ack", "fin", "psh", "rst"), True),
                        "tcp_flags": "1f",
                        "state": "closed",
                    }
                ),
                "label": "Malicious" if attack else "Benign",
            }
        )
        if i % 4 == 0:
            out.append({"timestamp": when(t + 0.2), "event_type": "dns", "dns": {"type": "query"}})
        if i % 100 == 0:
            out.append({"timestamp": when(t + 0.3), "event_type": "stats", "stats": {"uptime": i}})
    return out


def test_other_eve_event_types_are_skipped_and_counted_by_train_evaluate_and_score(
    tmp_path, capsys
):
    """A whole eve.json: the flows are trained on, evaluated and scored; the dns and stats
    events are skipped and said to be, as the worker counts them (the reader used to drop
    them unseen: train and score reported nothing skipped)."""
    day1, day2 = eve_records(1200, 40, seed=1), eve_records(500, 50, seed=2, t0=1.7e9)
    others = sum(r["event_type"] != "flow" for r in day2)
    train_log = write_log(tmp_path / "day1.json", day1)
    test_log = write_log(tmp_path / "day2.json", day2)
    art_dir = tmp_path / "art"
    common = ["--schema", "suricata-flow", "--detector", "mahalanobis"]
    assert _run(["train", "--data", train_log, *common, "--out", str(art_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    skipped = sum(r["event_type"] != "flow" for r in day1)
    assert f"{skipped:,} records of another kind skipped (event_type not in ['flow'])" in err

    rep_dir = tmp_path / "rep"
    argv = ["evaluate", "--artifact", str(art_dir), "--data", test_log, "--out", str(rep_dir)]
    assert _run([*argv, "--no-plots"]) == 0
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["skipped_not_selected"] == others and rep["n_records"] == 550

    out = tmp_path / "scores.jsonl"
    assert _run(["score", "--artifact", str(art_dir), "--data", test_log, "--out", str(out)]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["skipped"] == others and counts["scored"] == 550, counts


def test_zeek_logs_with_the_underscore_scope_separator_train_and_score_as_dotted_ones(tmp_path):
    """``redef Log::default_scope_sep = "_"`` makes Zeek write ``id_orig_h`` for ``id.orig_h``
    (its documented example).  Such logs train the same model, score the same, and their
    alerts name the same connection; before, the port and the identity were read as absent."""
    from stream_od.alerts import AlertPolicy
    from trainer.score import score_values

    dotted = zeek_records(600, 60, seed=7)
    underscored = [{k.replace(".", "_"): v for k, v in r.items()} for r in dotted]
    assert "id_resp_p" in underscored[0] and "id.resp_p" not in underscored[0]
    cfg = dict(schema="zeek-conn", detector="mahalanobis", target_alert_rate=0.02)
    arts = [
        train_site(SiteConfig(data=["x"], **cfg), records, progress=False, log=lambda _: None)
        for records in (dotted, underscored)
    ]
    assert arts[0].schema.to_dict() == arts[1].schema.to_dict()  # the same vocabularies
    assert arts[1].schema.fields[
        [f.name for f in arts[1].schema.fields].index("id.resp_p")
    ].vocabulary != ("-",)
    assert arts[0].threshold == arts[1].threshold
    values = [[orjson.dumps(r) for r in records] for records in (dotted, underscored)]
    scores = [[r["score"] for r in score_values(arts[0], v)] for v in values]
    assert scores[0] == scores[1]
    policy = AlertPolicy(
        feature_names=arts[0].feature_names,
        threshold=arts[0].threshold,
        score_scale=1.0,
        model_version="m",
        detector="mahalanobis",
        severity_margins=(1.0, 2.0, 3.0),
        top_k=1,
        schema=arts[0].schema,
    )
    first = [policy.identity.connections(records[:5]) for records in (dotted, underscored)]
    assert first[0] == first[1] and first[1][0].source_ip == "10.0.0.5"


def test_train_and_evaluate_on_records_a_shipper_wrapped_say_so(tmp_path, capsys):
    """Filebeat's Kafka or file output, by default, is its own JSON with the Zeek line as text
    in ``message``: no record carries a field of the schema.  train and evaluate stop naming
    that (train used to say the first numeric field's path was wrong)."""
    records = zeek_records(300, 30, seed=5)
    wrapped = [
        {"@timestamp": "2022-06-14T12:00:00Z", "message": orjson.dumps(r).decode(), "log": {}}
        for r in records
    ]
    log = write_log(tmp_path / "filebeat.json", wrapped)
    args = ["--data", log, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    assert _run(["train", *args, "--out", str(tmp_path / "x"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "none of the first 330 records carries any of the" in err
    assert "@timestamp, message, log" in err and "Filebeat" in err
    assert not (tmp_path / "x").exists()

    plain = write_log(tmp_path / "plain.json", records)
    assert (
        _run(
            [
                "train",
                *[plain if a == log else a for a in args],
                "--out",
                str(tmp_path / "a"),
                "--quiet",
            ]
        )
        == 0
    )
    assert _run(["evaluate", "--artifact", str(tmp_path / "a"), "--data", log, "--no-plots"]) == 1
    assert "none of the first 330 records" in capsys.readouterr().err


def test_train_prints_its_own_warnings_as_lines_not_source_locations(tmp_path):
    """A field no training record has is a warning an operator reads on the terminal:
    ``stream-od train: warning: ...``, not Python's ``path.py:228: UserWarning:`` and the code."""
    import subprocess
    import sys

    records = [
        {k: v for k, v in r.items() if k != "id.resp_p"} for r in zeek_records(300, 0, seed=2)
    ]
    log = write_log(tmp_path / "noport.log", records)
    argv = ["train", "--data", log, "--schema", "zeek-conn", "--detector", "mahalanobis"]
    argv += ["--max-alert-rate", "1"]  # the warning is the point, not the gate
    done = subprocess.run(
        [sys.executable, "-m", "stream_od.cli", *argv, "--out", str(tmp_path / "a"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "stream-od train: warning: field 'id.resp_p': no training record has" in done.stderr
    assert "UserWarning" not in done.stderr and ".py:" not in done.stderr


def test_warnings_of_other_code_keep_pythons_format():
    import warnings

    from stream_od import cli, features

    ours = cli._warning_line(
        "stream-od x", warnings.formatwarning, "m", UserWarning, features.__file__, 9
    )
    assert ours == "stream-od x: warning: m\n"
    theirs = cli._warning_line(
        "stream-od x", warnings.formatwarning, "m", UserWarning, "/lib/k.py", 3
    )
    assert theirs.startswith("/lib/k.py:3: UserWarning: m")
    deprecated = cli._warning_line(
        "p", warnings.formatwarning, "d", DeprecationWarning, features.__file__, 1
    )
    assert "DeprecationWarning" in deprecated
