"""trainer.scored_logs: labelled logs scored a chunk at a time give, record by record, what
scoring them whole gives (``evaluate``'s way until 2026-12-07), window features included; and
``evaluate`` on top of it refuses what it cannot grade before it scores anything."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from tests.trainer.test_site import quiet_mahalanobis, write_log, zeek_records
from trainer import scored_logs, time_order
from trainer.labels import find_labels
from trainer.readers import read_logs, time_key
from trainer.report import evaluate_logs
from trainer.scored_logs import score_logs
from trainer.site import encode, selected


def awkward_day(seed: int) -> list[dict]:
    """A labelled day with what a chunk boundary could get wrong: a service and a port
    training never had, rows lacking a field, a record of another kind (a dns log record), a
    tagged one (zeek-kafka's ``{"conn": {...}}``), one the schema refuses (none of its
    fields), Background rows, and hosts whose windows span chunks."""
    day = zeek_records(400, 60, seed=seed, t0=1.7e9)
    for i, r in enumerate(day):
        r["id.orig_h"] = f"10.0.0.{i % 7}"  # a few hosts, each in every chunk
        if i % 11 == 0:
            r["service"] = "smb"
        if i % 13 == 0:
            r.pop("resp_pkts", None)
        if i % 17 == 0:
            r["label"] = "Background"
    day.append({"ts": 1.7e9 + 5, "uid": "Cdns", "_path": "dns", "query": "example.com"})
    day.append({"conn": {**day[3], "uid": "Ctagged", "ts": 1.7e9 + 7.25}})
    day.append({"ts": 1.7e9 + 9, "uid": "Cbare", "label": "Benign"})
    return day


@pytest.fixture(scope="module", params=["zeek-conn", "zeek-conn-windows"])
def art(request) -> Artifact:
    day1 = sorted(zeek_records(800, 0, seed=3), key=lambda r: r["ts"])
    return quiet_mahalanobis(day1, schema=request.param)


def uid(record: dict) -> str:
    return record["conn"]["uid"] if "conn" in record else record["uid"]


def whole(art: Artifact, paths: list[str]) -> dict[str, tuple]:
    """Per uid: score (None if refused), label kind, detail, and the share columns, from
    every record read, encoded and scored at once in event-time order (``read_logs``' order,
    but a tagged record by the time inside it)."""
    logs = read_logs(paths, event_types=None)
    records, _ = selected(logs.records, art.schema)
    records.sort(key=lambda r: time_key(r, logs.fmt))
    labels = find_labels(records, art.schema)
    X, refused = encode(records, art.schema)
    ok = np.ones(len(records), dtype=bool)
    ok[list(refused)] = False
    scores = np.full(len(records), np.nan)
    scores[ok] = art.score(X[ok])
    cols = [*art.schema.missing_columns.values(), *art.schema.unseen_columns.values()]
    return {
        uid(r): (
            None if not ok[i] else scores[i],
            labels.kind[i],
            labels.detail[i],
            tuple(X[i, cols] > 0.5),
        )
        for i, r in enumerate(records)
    }


def chunked(art: Artifact, paths: list[str], monkeypatch) -> tuple[dict[str, tuple], object]:
    monkeypatch.setattr(scored_logs, "CHUNK", 64)  # many chunks, windows across them
    monkeypatch.setattr(time_order, "RUN", 50)  # and the windows' time order through files
    got = score_logs(art, paths)
    read = [orjson.loads(line) for p in paths for line in open(p, "rb")]
    uids = [uid(r) for r in read if r.get("_path", "conn") == "conn"]  # the schema's selection
    assert len(uids) == len(got.scores)
    return {
        u: (
            None if got.refused[i] else got.scores[i],
            got.labels.kind[i],
            got.labels.detail[i],
            tuple(got.flags[i]),
        )
        for i, u in enumerate(uids)
    }, got


def test_chunks_score_every_record_as_the_whole_log_does(art, tmp_path, monkeypatch):
    day = awkward_day(seed=5)
    paths = [
        write_log(tmp_path / "a.log", day[: len(day) // 2]),
        write_log(tmp_path / "b.log", day[len(day) // 2 :]),
    ]
    expected = whole(art, paths)
    got, scored = chunked(art, paths, monkeypatch)
    assert got.keys() == expected.keys()
    for u, (score, *rest) in expected.items():
        g_score, *g_rest = got[u]
        assert g_rest == rest, u
        assert (score is None) == (g_score is None), u
        if score is not None:
            assert g_score == pytest.approx(score, rel=1e-12, abs=1e-12), u
    assert got["Cbare"][0] is None  # refused, not scored
    assert scored.skipped == 1  # the dns record
    assert sum(g[0] is None for g in got.values()) == 1
    assert any(any(g[3]) for g in got.values())  # the share columns were exercised


def test_the_plot_sample_is_rows_scored_with_their_positions(art, tmp_path, monkeypatch):
    paths = [write_log(tmp_path / "a.log", awkward_day(seed=6))]
    monkeypatch.setattr(scored_logs, "CHUNK", 64)
    full = score_logs(art, paths)
    sampled = score_logs(art, paths, plot_rows=50)
    scored = np.flatnonzero(~full.refused)
    assert full.plot_positions.tolist() == scored.tolist()  # under the bound: every row
    assert len(sampled.plot_positions) == 50
    assert set(sampled.plot_positions) <= set(scored)
    rows = dict(zip(full.plot_positions.tolist(), full.plot_rows))
    for p, row in zip(sampled.plot_positions.tolist(), sampled.plot_rows):
        assert np.array_equal(row, rows[p])
    assert np.allclose(art.score(sampled.plot_rows), full.scores[sampled.plot_positions])


def test_evaluate_refuses_an_unlabelled_log_before_scoring_it(art, tmp_path, monkeypatch):
    log = write_log(tmp_path / "a.log", zeek_records(300, 10, seed=7, labelled=False))

    def no_scoring(*_a, **_k):
        raise AssertionError("scored before the labels were checked")

    art.save(tmp_path / "art")
    monkeypatch.setattr(Artifact, "score", no_scoring)
    with pytest.raises(ValueError, match="evaluate needs labelled rows"):
        evaluate_logs(tmp_path / "art", [log], tmp_path / "rep", plots=False)
    with pytest.raises(ValueError, match="label field 'verdict'"):
        evaluate_logs(tmp_path / "art", [log], tmp_path / "rep", label_field="verdict")


def test_evaluate_of_a_log_without_records_says_so(art, tmp_path):
    """A Zeek log of a quiet hour: its header and no connection."""
    log = tmp_path / "quiet.log"
    log.write_text("#separator \\x09\n#fields\tts\tuid\tlabel\n#types\ttime\tstring\tstring\n")
    art.save(tmp_path / "art")
    with pytest.raises(ValueError, match=r"quiet\.log: no records to evaluate"):
        evaluate_logs(tmp_path / "art", [log], tmp_path / "rep", plots=False)


def test_evaluate_plots_a_sample_of_a_large_log_and_says_so(art, tmp_path, monkeypatch):
    log = write_log(tmp_path / "a.log", awkward_day(seed=8))
    art.save(tmp_path / "art")
    monkeypatch.setattr(scored_logs, "PLOT_ROWS", 100)
    rep = evaluate_logs(tmp_path / "art", [log], tmp_path / "rep")
    n_scored = rep["n_records"] - rep["refused_by_schema"]
    assert rep["plotted"] == f"a uniform sample of 100 of the {n_scored:,} scored records"
    assert {"scores.png", "confusion.png"} <= set(rep["plots"])
    on_disk = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert on_disk["plotted"] == rep["plotted"]
    assert (tmp_path / "rep" / "scores.png").stat().st_size > 0
