"""``benchmarks/windows_restore.py``: one short run on the real broker, a windowed artifact
trained on a day of Zeek records, two tail lengths, both topic layouts, the three ways."""

import json

from tests.benchmarks.runner import run_benchmark
from tests.integration.conftest import ZEEK_TRAIN


def test_a_short_run_rebuilds_each_tail_the_three_ways(
    tmp_path, kafka_bootstrap, zeek_windows_artifact
):
    _, artifact = zeek_windows_artifact
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
    # every tail read back whole (the benchmark checks the count), both layouts, three ways
    got = {(r["records"], r["topic"], r["reader"]) for r in report["results"]}
    assert got == {
        (n, layout, reader)
        for n in (300, 2500)
        for layout in ("plain", "transactions")
        for reader in ("before 2026-12-07", "now", "now, read again forwards")
    }
    assert all(len(r["runs"]) == 2 and r["records_per_s"] > 0 for r in report["results"])
    assert "| 2,500 | transactions | now |" in proc.stdout
