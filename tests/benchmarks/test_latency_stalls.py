"""``benchmarks/latency_stalls.py``: the jstat reading, the rerun alone, and one short run on
the real broker."""

import json
import sys
from pathlib import Path

from tests.benchmarks.runner import run_stream_benchmark

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from latency_stalls import decode_and_score_alone, young_gcs  # noqa: E402

# ``jstat -gc -t PID 1000`` as JDK 17 prints it (columns trimmed to the ones read, plus one).
JSTAT = """\
Timestamp        S0C    EU     YGC     YGCT     FGC
          10.1  0.0  3379.2   280    7.387     0
          11.1  0.0  3686.4   281    7.498     0
          12.1  0.0  1228.8   283    7.538     0
          13.1  0.0  2662.4   283    7.538     0
"""


def test_young_gcs_are_differences_between_samples():
    gcs = young_gcs(JSTAT.splitlines(), t_start=100.0)
    assert [g["young_gcs"] for g in gcs] == [1, 2, 0]
    assert [round(g["young_gc_s"], 3) for g in gcs] == [0.111, 0.040, 0.0]
    assert [g["at"] for g in gcs] == [101.0, 102.0, 103.0]


def test_young_gcs_without_samples_is_empty():
    assert young_gcs([], 0.0) == []
    assert young_gcs(JSTAT.splitlines()[:2], 0.0) == []


def test_a_short_run_times_every_batch(tmp_path, kafka_bootstrap, kdd_train_path):
    out = tmp_path / "stalls.json"
    proc = run_stream_benchmark(
        "latency_stalls.py",
        tmp_path,
        kafka_bootstrap,
        kdd_train_path,
        "--rate",
        "500",
        "--latency-seconds",
        "2",
        "--top",
        "3",
        "--json",
        str(out),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    batches = report["batches"]
    # warm-up (2 s) and measured part (2 s) at 500 records/s: 2,000 records, every one batched
    assert sum(b["records"] for b in batches) == 2_000
    for b in batches:
        assert b["start"] <= b["end"] and 0.0 < b["commit_s"] <= b["end"] - b["start"]
    assert report["result"]["latency_records"] == 1_000
    assert "| batch start, s | records | batch ms | commit ms |" in proc.stdout


def test_the_rerun_alone_feeds_windows_per_partition_and_leaves_the_workers_alone(tmp_path):
    """A windowed schema: the rerun decodes with a decoder of its own, each batch's records
    with their partitions, so the worker's windows are not fed a second time."""
    import types

    import pytest

    from stream_od.artifact import Artifact
    from stream_od.records import RecordDecoder
    from tests.integration.conftest import ZEEK_TRAIN
    from trainer.readers import read_logs
    from trainer.score import wire_values
    from trainer.site import SiteConfig, train_site

    if not ZEEK_TRAIN.is_file():
        pytest.skip(f"labelled Zeek conn log not found at {ZEEK_TRAIN}")
    records = read_logs([ZEEK_TRAIN]).records
    cfg = SiteConfig(
        data=[str(ZEEK_TRAIN)],
        schema="zeek-conn-windows",
        detector="mahalanobis",
        target_alert_rate=0.01,
    )
    art = Artifact.load(
        train_site(cfg, records, progress=False, log=lambda _: None).save(tmp_path / "w")
    )
    values = wire_values(records[:600], art.schema.label_fields)
    live = RecordDecoder(art.schema)
    kept = []
    for start in range(0, 600, 200):
        part = values[start : start + 200]
        partitions = [("in", i % 3) for i in range(len(part))]
        live.decode(part, [0] * len(part), partitions)
        kept.append((part, [0] * len(part), partitions))
    held = live.window_keys
    scorer = types.SimpleNamespace(decoder=live, model=art)
    alone = decode_and_score_alone(scorer, kept)
    assert alone["records"] == 600 and alone["wall_s"] > 0
    assert live.window_keys == held  # the worker's windows were not fed again
