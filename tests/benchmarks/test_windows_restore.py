"""``benchmarks/windows_restore.py``: one short run on the real broker, a windowed artifact
trained on a day of Zeek records, two tail lengths, both topic layouts, the three ways."""

import json

import pytest

from tests.benchmarks.runner import run_benchmark
from tests.integration.conftest import ZEEK_TRAIN


def test_a_short_run_rebuilds_each_tail_with_both_reader_settings(tmp_path, kafka_bootstrap):
    from trainer.readers import read_logs
    from trainer.site import SiteConfig, train_site

    if not ZEEK_TRAIN.is_file():
        pytest.skip(f"labelled Zeek conn log not found at {ZEEK_TRAIN}")
    cfg = SiteConfig(
        data=[str(ZEEK_TRAIN)],
        schema="zeek-conn-windows",
        detector="mahalanobis",
        target_alert_rate=0.01,
    )
    records = read_logs([ZEEK_TRAIN]).records
    artifact = train_site(cfg, records, progress=False, log=lambda _: None).save(tmp_path / "a")
    out = tmp_path / "restore.json"
    proc = run_benchmark(
        "windows_restore.py",
        *("--artifact", str(artifact), "--data", str(ZEEK_TRAIN)),
        *("--bootstrap", kafka_bootstrap, "--tails", "300", "2500", "--repeats", "2"),
        *("--transaction-records", "400", "--json", str(out)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    # every tail was read back whole (the benchmark checks the count) in both layouts, both ways
    got = {(r["records"], r["topic"], r["reader"]) for r in report["results"]}
    assert got == {
        (n, layout, reader)
        for n in (300, 2500)
        for layout in ("plain", "transactions")
        for reader in ("before 2026-12-07", "now", "now, read again forwards")
    }
    assert all(len(r["runs"]) == 2 and r["records_per_s"] > 0 for r in report["results"])
    assert "| 2,500 | transactions | now |" in proc.stdout
