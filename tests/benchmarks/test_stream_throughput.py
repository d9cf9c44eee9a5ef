"""``benchmarks/stream_throughput.py``: one short run on the real broker, with the workers and
passthroughs whose commits overlap beside the shipped ones (``--compare-overlap``), and a worker
with other producer settings (``--compare-producer``), and the latency measured after a warm-up
from a replay of its own (``--compare-separate-warmup``), and with smaller micro-batches
(``--compare-max-batch-records``), and with its layers summed by BLAS
(``--compare-scoring-sums``), and with every repeated row scored (``--compare-repeated-rows``);
two repeats, the passthrough first in one and last in the
other."""

import json

from tests.benchmarks.runner import run_benchmark, run_stream_benchmark


def test_a_short_run_compares_serial_and_overlapped_commits(
    tmp_path, kafka_bootstrap, kdd_train_path
):
    out = tmp_path / "throughput.json"
    proc = run_stream_benchmark(
        "stream_throughput.py",
        tmp_path,
        kafka_bootstrap,
        kdd_train_path,
        "--count",
        "5000",
        "--repeats",
        "2",
        "--rates",
        "500",
        "--latency-seconds",
        "2",
        "--compare-overlap",
        "--compare-producer",
        "retry.backoff.ms=1",
        "--compare-separate-warmup",
        "--compare-max-batch-records",
        "50",
        "--compare-scoring-sums",
        "--compare-repeated-rows",
        "--json",
        str(out),
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    # the passthrough ran before the workers in the first repeat and after them in the second
    assert [r["passthrough_first"] for r in report["runs"]] == [True, False]
    assert report["ratio_passthrough_first"] > 0 and report["ratio_passthrough_last"] > 0
    run = report["runs"][0]
    for key in (
        "passthrough_rps",
        "passthrough_overlap_rps",
        "worker_rps_native+overlap",
        "worker_rps_native+producer",
        "worker_rps_native+blas",
        "worker_rps_native+each",
    ):
        assert run[key] > 0
    assert report["ratio_overlap"] > 0 and report["ratio_scoring_sums_blas"] > 0
    assert report["ratio_repeated_rows_each"] > 0
    (rate,) = report["latency_by_rate"]
    # both arms took the warm-up and the measured records (2 s each at 500 records/s)
    assert rate["latency_runs"][0]["latency_records"] == 1_000
    assert rate["overlap"]["latency_runs"][0]["latency_records"] == 1_000
    assert rate["producer"]["latency_runs"][0]["latency_records"] == 1_000
    assert rate["separate_warmup"]["latency_runs"][0]["latency_records"] == 1_000
    assert rate["scoring_sums_blas"]["latency_runs"][0]["latency_records"] == 1_000
    assert rate["repeated_rows_each"]["latency_runs"][0]["latency_records"] == 1_000
    small = rate["max_batch_records_50"]["latency_runs"][0]
    assert small["latency_records"] == 1_000 and small["records_per_batch"] <= 50
    # where the cores went: the worker's process and the replay were measured
    run = rate["latency_runs"][0]
    assert run["cpu_worker_cores"] > 0 and run["cpu_replay_cores"] > 0
    assert 0 < run["loop_busy_share"] < 1
    assert "500, retry.backoff.ms=1" in proc.stdout and "500, max_batch_records 50" in proc.stdout
    assert "commits overlapped" in proc.stdout and "overlap worker" in proc.stdout
    assert "500, scoring_sums blas" in proc.stdout and "blas sums / passthrough" in proc.stdout
    assert "500, every repeated row scored" in proc.stdout
    assert "each row / passthrough" in proc.stdout


def test_a_zeek_run_measures_the_suppressed_worker_beside_the_others(
    tmp_path, kafka_bootstrap, zeek_mahalanobis_artifact, zeek_replay_path
):
    """Zeek records re-timed at 1,000 a second (``--event-rate``), the worker suppressed per
    destination for 60 s in the backlog's repeats and as an arm of the latency run."""
    _, artifact = zeek_mahalanobis_artifact
    out = tmp_path / "throughput.json"
    proc = run_benchmark(
        "stream_throughput.py",
        *("--artifact", str(artifact), "--data", str(zeek_replay_path)),
        *("--bootstrap", kafka_bootstrap, "--count", "3000", "--repeats", "1"),
        *("--rates", "500", "--latency-seconds", "2", "--event-rate", "1000"),
        *("--suppress-window-s", "60", "--suppress-by", "destination_ip"),
        *("--json", str(out)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["event_rate"] == 1000 and report["suppress_by"] == ["destination_ip"]
    # 010's scans of a few destinations, 3 s of event time: most alerts are held back
    assert 0 < report["alert_rate_native+suppress"] < report["alert_rate_native"] / 2
    (rate,) = report["latency_by_rate"]
    assert rate["latency_runs"][0]["latency_records"] == 1_000
    assert rate["suppressed"]["latency_runs"][0]["latency_records"] == 1_000
    assert "500, suppressed 60 s by destination_ip" in proc.stdout
