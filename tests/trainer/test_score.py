"""``stream-od score``'s scoring of records (trainer/score.py), as the worker scores them: a
record whose score is not finite is a dead letter with its reason, not a stop (pure logic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from stream_od.records import NON_FINITE_SCORE
from stream_od.schema import FeatureSchema
from trainer import time_order
from trainer.score import input_values, score_file, score_values


@pytest.fixture
def artifact() -> Artifact:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * [1, 100, 0.01] + [0, 50, 1]
    st = Standardizer().fit(X)
    det = Mahalanobis().fit(st.transform(X)).infer_threshold(st.transform(X), 99)
    return Artifact(detector=det, standardizer=st, schema=FeatureSchema.numeric(("a", "b", "c")))


def test_a_value_far_beyond_the_training_range_is_a_dead_letter_and_the_rest_is_scored(artifact):
    """1e200 is a finite number, so the decoder takes it; squared in the model's distance it
    overflows.  The whole batch used to raise FloatingPointError (in the worker: the partition
    stopped, the same batch failing at every restart)."""
    values = [
        orjson.dumps({"a": 0.1, "b": 50.0, "c": 1.0}),
        orjson.dumps({"a": 0.1, "b": 1e200, "c": 1.0}),
        orjson.dumps({"a": 9.0, "b": 50.0, "c": 1.0}),
    ]
    out = list(score_values(artifact, values))
    assert [r["index"] for r in out] == [0, 1, 2]
    assert out[1]["dead_letter"] == NON_FINITE_SCORE and "training" in out[1]["detail"]
    assert out[0]["alert"] is False and out[2]["alert"] is True
    X = np.array([[0.1, 50.0, 1.0], [9.0, 50.0, 1.0]])
    assert [out[0]["score"], out[2]["score"]] == artifact.score(X).tolist()  # unchanged bits


def test_the_detector_sets_a_non_finite_row_apart_only_when_asked(artifact):
    X = np.array([[0.1, 50.0, 1.0], [0.1, 1e200, 1.0]])
    with pytest.raises(FloatingPointError, match="non-finite"):
        artifact.score_and_contributions(X)
    scores, contributions = artifact.score_and_contributions(X, check_finite=False)
    assert np.isfinite(scores[0]) and not np.isfinite(scores[1])
    assert contributions.shape == (2, 3) and np.isfinite(contributions[0]).all()


@pytest.mark.parametrize("run", [None, 2])
def test_a_logs_records_go_to_score_in_read_logs_order_without_labels_and_sized_to_fit(
    tmp_path, monkeypatch, run
):
    """``input_values`` turns each record into its JSON as it reads it; the order is still
    read_logs': by time, ties in reading order, records without a time last, file after
    file, whether sorted in memory or in runs of 2 through files.  Each value is a bytes
    object of its own size: orjson's own result keeps a buffer of a few kilobytes behind it
    (``json_bytes``)."""
    if run:
        monkeypatch.setattr(time_order, "RUN", run)
    from trainer.readers import read_logs
    from trainer.score import input_values, json_bytes, wire_values

    rows = [
        {"ts": 5.0, "uid": "a", "label": "Benign"},
        {"uid": "no-time", "label": "Benign"},
        {"ts": 2.0, "uid": "b", "label": "Malicious"},
        {"ts": 5.0, "uid": "c"},  # ties with "a": after it, as read
    ]
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    first.write_bytes(b"\n".join(orjson.dumps(r) for r in rows[:3]) + b"\n")
    second.write_bytes(orjson.dumps({"ts": 2.0, "uid": "d"}) + b"\n" + orjson.dumps(rows[3]))
    values = input_values([first, second], ["label"])
    expected = wire_values(read_logs([first, second], event_types=None).records, ["label"])
    assert values == expected
    assert [orjson.loads(v)["uid"] for v in values] == ["b", "d", "a", "c", "no-time"]
    assert all("label" not in orjson.loads(v) for v in values)
    record = {"ts": 1.5, "history": "ShADadFf", "tunnel_parents": []}
    assert json_bytes(record) == orjson.dumps(record)


def test_score_file_writes_the_same_lines_when_the_sort_goes_through_files(tmp_path, monkeypatch):
    from tests.trainer.test_site import quiet_mahalanobis, zeek_records

    day = sorted(zeek_records(800, 0, seed=3), key=lambda r: r["ts"])
    artifact_dir = tmp_path / "art"
    quiet_mahalanobis(day).save(artifact_dir)
    log = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.log"
    whole = score_file(artifact_dir, [str(log)], str(tmp_path / "memory.jsonl"))
    monkeypatch.setattr(time_order, "RUN", 3)
    spilled = score_file(artifact_dir, [str(log)], str(tmp_path / "files.jsonl"))
    assert whole["records"] == spilled["records"] == 40
    assert (tmp_path / "memory.jsonl").read_bytes() == (tmp_path / "files.jsonl").read_bytes()


@pytest.fixture
def zeek_artifact_dir(tmp_path) -> Path:
    from tests.trainer.test_site import quiet_mahalanobis, zeek_records

    day = sorted(zeek_records(800, 0, seed=3), key=lambda r: r["ts"])
    quiet_mahalanobis(day).save(tmp_path / "art")
    return tmp_path / "art"


LOG = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.log"


@pytest.mark.parametrize("out", ["-", "/dev/stdout"])
def test_scores_to_standard_output_go_there_with_the_summary_on_stderr(
    tmp_path, zeek_artifact_dir, out
):
    """Standard output redirected to a file: the score lines land in it, the summary in
    stderr, and ``/dev/stdout`` stays the link it is (a finished output renamed onto it
    replaced the link with a regular file, as root)."""
    import subprocess
    import sys

    expected = tmp_path / "expected.jsonl"
    score_file(zeek_artifact_dir, [str(LOG)], str(expected))
    link = Path("/dev/stdout")
    was_link = link.is_symlink()
    with (tmp_path / "stdout").open("wb") as so, (tmp_path / "stderr").open("wb") as se:
        argv = [
            sys.executable,
            "-m",
            "stream_od.cli",
            "score",
            "--artifact",
            str(zeek_artifact_dir),
        ]
        proc = subprocess.run([*argv, "--data", str(LOG), "--out", out], stdout=so, stderr=se)
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()
    assert (tmp_path / "stdout").read_bytes() == expected.read_bytes()
    summary = orjson.loads((tmp_path / "stderr").read_text().strip().splitlines()[-1])
    assert summary["records"] == 40 and summary["out"] == out
    assert link.is_symlink() == was_link
    assert not Path("-").exists()


def test_links_devices_and_pipes_are_written_in_place_files_are_renamed_into_place(tmp_path):
    import os

    from trainer.score import written_in_place

    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    os.mkfifo(tmp_path / "fifo")
    assert not written_in_place(tmp_path / "file")
    assert not written_in_place(tmp_path / "new.jsonl")
    assert written_in_place(tmp_path / "link")
    assert written_in_place(tmp_path / "fifo")
    assert written_in_place(Path("/dev/null"))
    assert written_in_place(Path("/proc/self/fd/1"))


def test_a_link_is_written_through_and_stays_a_link(tmp_path, zeek_artifact_dir):
    target = tmp_path / "scores.jsonl"
    target.write_text("earlier\n")
    (tmp_path / "link").symlink_to(target)
    result = score_file(zeek_artifact_dir, [str(LOG)], str(tmp_path / "link"))
    assert result["records"] == 40
    assert (tmp_path / "link").is_symlink()
    assert len(target.read_text().splitlines()) == 40


def test_a_tagged_log_is_scored_in_the_order_of_its_plain_twin(tmp_path, zeek_artifact_dir):
    """zeek-kafka's tagged records, with an additional value beside each, are put in the
    time order of the records inside them, so index i is the same connection either way."""
    plain = [orjson.loads(v) for v in input_values([LOG])]
    assert [r["ts"] for r in plain] == sorted(r["ts"] for r in plain)
    shuffled = plain[::-1]  # file order is not time order
    (tmp_path / "plain.json").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in shuffled))
    tagged = [{"conn": r, "zeek_server": "edge-1"} for r in shuffled]
    (tmp_path / "tagged.json").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in tagged))
    a = score_file(zeek_artifact_dir, [str(tmp_path / "plain.json")], str(tmp_path / "a"))
    b = score_file(zeek_artifact_dir, [str(tmp_path / "tagged.json")], str(tmp_path / "b"))
    assert a["scored"] == b["scored"] == 40 and b["dead_letters"] == 0
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_a_file_that_is_no_log_is_an_error_for_a_sensor_model(tmp_path, zeek_artifact_dir):
    """Zeek TSV rows without their header (``LogAscii::include_meta = F``) are not scored as
    lines that each fail (every one a dead letter, exit 0): the format error says why."""
    rows = [line for line in LOG.read_text().splitlines() if not line.startswith("#")]
    headless = tmp_path / "headless.log"
    headless.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="Zeek TSV rows without their header"):
        score_file(zeek_artifact_dir, [str(headless)], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert score_file(zeek_artifact_dir, [str(empty)], str(tmp_path / "out"))["records"] == 0


def test_an_out_that_is_the_data_or_inside_the_artifact_is_refused(tmp_path, zeek_artifact_dir):
    """``--out`` naming the log being read (or a link to it, or another path to it) would
    replace or empty the log; inside the artifact it would add a file its manifest does not
    list.  Refused before anything is read, the log left as it was."""
    log = tmp_path / "in.log"
    log.write_bytes(LOG.read_bytes())
    (tmp_path / "link").symlink_to(log)
    for out in (log, tmp_path / "link", tmp_path / ".." / tmp_path.name / "in.log"):
        with pytest.raises(ValueError, match="is the --data file"):
            score_file(zeek_artifact_dir, [str(log)], str(out))
        assert log.read_bytes() == LOG.read_bytes()
    with pytest.raises(ValueError, match="is inside the artifact"):
        score_file(zeek_artifact_dir, [str(log)], str(zeek_artifact_dir / "scores.jsonl"))
    with pytest.raises(ValueError, match="no directory"):
        score_file(zeek_artifact_dir, [str(log)], str(tmp_path / "nodir" / "x.jsonl"))
    assert not (zeek_artifact_dir / "scores.jsonl").exists()


def test_a_damaged_line_inside_a_json_log_is_the_dead_letter_the_worker_gives_it(
    tmp_path, zeek_artifact_dir
):
    """A sensor killed mid-write and restarted on the same file leaves a line that is no JSON
    object in the middle of the log.  The worker dead-letters that one record and goes on, and
    so does score (it stopped at the line); train still stops, naming it."""
    from trainer.readers import read_log

    lines = (LOG.parent / "zeek-conn-labeled.json").read_bytes().splitlines(keepends=True)
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(b"".join([*lines[:5], lines[5][:40] + lines[6], b"[1, 2]\n", *lines[7:]]))
    clean = tmp_path / "clean.json"
    clean.write_bytes(b"".join([*lines[:5], *lines[7:]]))  # what the damage left whole
    out = score_file(zeek_artifact_dir, [str(damaged)], str(tmp_path / "d.jsonl"))
    assert out["dead_letters"] == 2 and out["scored"] == len(lines) - 2
    rows = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert [r["dead_letter"] for r in rows[-2:]] == ["invalid_json", "invalid_json"]
    score_file(zeek_artifact_dir, [str(clean)], str(tmp_path / "c.jsonl"))
    scored = [orjson.loads(x) for x in (tmp_path / "c.jsonl").read_bytes().splitlines()]
    assert rows[:-2] == scored  # no time: last, as the worker's dead letters are in order
    with pytest.raises(ValueError, match=r"damaged\.json:6: not a JSON object"):
        read_log(damaged)
