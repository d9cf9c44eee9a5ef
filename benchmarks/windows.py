"""Traffic-window features: do they help, and what do they cost?  Side by side in one run.

    python benchmarks/windows.py --json benchmarks/results/windows.json [--quick]
        [--methods mahalanobis iforest vaegmm] [--seeds 0 1 2] [--kdd] [--cost-only]

Detection, Zeek: ``benchmarks/zeek_real.py``'s protocol (train on ``008`` through the product's
``train_site``, 70/15/15 time split of the benign rows, threshold at the 99th percentile; test
on ``010``, a later day of the same host) once with ``zeek-conn`` and once with
``zeek-conn-windows`` (the same fields plus 20 window columns), same methods, same seeds.
Reported per schema: test ROC AUC, PR AUC, the benign alert rate and the recall at the trained
threshold, and the recall at a 1 % benign alert rate on the test day itself (an oracle
threshold, to tell ranking from threshold drift).

Detection, KDD (``--kdd``): the raw KDD records carry no addresses and no times, so stream-od
cannot compute windows from them; what can be compared is KDD's own traffic features:
``kdd99-full`` (all 41 fields) against ``kdd99-full`` without its 19 traffic features (``count``
to ``dst_host_srv_rerror_rate``), on the reference protocol.

Cost: records per second through :meth:`stream_od.records.RecordDecoder.decode` (the worker's
decode-and-encode stage) of the ``008`` records as Zeek's JSON writer sends them, with and
without windows, interleaved repeats, medians; and the memory the window state holds per
100,000 active keys (``tracemalloc``, synthetic keys, each with ``count`` connections).
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
import tempfile
import time
import tracemalloc
from typing import Any

import numpy as np
import orjson

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import zeek_real  # noqa: E402
from stream_od.features import fit_schema  # noqa: E402
from stream_od.records import RecordDecoder, field_values  # noqa: E402
from stream_od.schema import FeatureSchema, load_schema  # noqa: E402
from stream_od.schema.kdd import KDD_COLUMNS  # noqa: E402
from stream_od.windows import TrafficWindows  # noqa: E402
from trainer.readers import read_logs  # noqa: E402

SCHEMAS = ("zeek-conn", "zeek-conn-windows")
KDD_TRAFFIC = KDD_COLUMNS[KDD_COLUMNS.index("count") :]  # features 23-41


def kdd_without_traffic(workdir: pathlib.Path) -> str:
    """``kdd99-full`` minus KDD's traffic features, as a schema file."""
    full = load_schema("kdd99-full")
    fields = [f.to_dict() for f in full.fields if f.path not in KDD_TRAFFIC]
    d = {**full.to_dict(), "name": "kdd99-full-no-traffic", "fields": fields}
    FeatureSchema.from_dict(d)  # valid, or say so here
    path = workdir / "kdd99-full-no-traffic.json"
    path.write_text(json.dumps(d))
    return str(path)


def detection(args) -> dict[str, Any]:
    out: dict[str, Any] = {"zeek": {}, "kdd": {}}
    for schema in SCHEMAS:
        args.schema = schema
        print(f"-- Zeek, schema {schema}", flush=True)
        out["zeek"][schema] = zeek_real.run_zeek(args)
    if args.kdd:
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="windows_"))
        for name, schema in (
            ("kdd99-full", "kdd99-full"),
            ("kdd99-full-no-traffic", kdd_without_traffic(workdir)),
        ):
            args.kdd_schema = schema
            print(f"-- KDD, schema {name}", flush=True)
            out["kdd"][name] = zeek_real.run_kdd(args)
    return out


# -- cost ----------------------------------------------------------------------------------
def decode_rate(values: list[bytes], schema: FeatureSchema, batch: int) -> float:
    decoder = RecordDecoder(schema, max_record_bytes=1 << 20)
    t0 = time.perf_counter()
    for start in range(0, len(values), batch):
        decoder.decode(values[start : start + batch])
    return len(values) / (time.perf_counter() - t0)


def memory_per_100k_keys(schema: FeatureSchema, n_keys: int) -> dict[str, float]:
    """Bytes held by window state with ``n_keys`` active keys per role, each key with the
    connection window full (``count`` connections inside the time horizon)."""
    spec = schema.windows
    assert spec is not None
    per_key = spec.count
    rng = np.random.default_rng(0)
    tracemalloc.start()
    windows = TrafficWindows(spec, schema.time_field or "ts")
    base = tracemalloc.get_traced_memory()[0]
    n = n_keys * per_key
    chunk = 50_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        idx = np.arange(start, start + m)
        hosts = [f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}" for k in idx % n_keys]
        cols = {spec.roles[0].key: hosts, spec.roles[0].peer: hosts}
        for role in spec.roles:
            cols.setdefault(role.key, hosts)
            cols.setdefault(role.peer, hosts)
        # all of it within half the horizon: every key keeps its `count` connections
        cols[windows.time_field] = (1e9 + idx * (spec.horizon_s / 2 / n)).tolist()
        for p in spec.service:
            cols[p] = rng.choice(["tcp", "udp", "80", "443", "53"], m).tolist()
        cols[spec.serror.field] = rng.choice(["S0", "SF", "REJ"], m).tolist()
        cols[spec.rerror.field] = cols[spec.serror.field]
        windows.features(cols, m)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    entries = [len(ks.recent.entries) for state in windows._state for ks in state.values()]
    return {
        "keys_held": windows.keys_held,
        "connections_per_key": statistics.median(entries),
        "bytes": held,
        "mib_per_100k_keys": held / windows.keys_held * 100_000 / 2**20,
    }


def cost(args) -> dict[str, Any]:
    records = read_logs([args.train]).records
    values = [
        orjson.dumps({k: v for k, v in r.items() if k not in ("label", "detailedlabel")})
        for r in records
    ]
    schemas = {}
    for name in SCHEMAS:
        s = load_schema(name)
        schemas[name] = fit_schema(s, field_values(records, s))
    rates: dict[str, list[float]] = {name: [] for name in SCHEMAS}
    for _ in range(args.repeats):
        for name in SCHEMAS:  # interleaved: the machine's noise hits both
            rates[name].append(decode_rate(values, schemas[name], args.batch))
    med = {name: statistics.median(r) for name, r in rates.items()}
    mem = memory_per_100k_keys(schemas["zeek-conn-windows"], args.memory_keys)
    return {
        "records": len(values),
        "batch": args.batch,
        "repeats": args.repeats,
        "decode_records_per_s": rates,
        "median_records_per_s": med,
        "ratio_windows_to_plain": med["zeek-conn-windows"] / med["zeek-conn"],
        "memory": mem,
    }


COLUMNS = [
    ("test_roc_auc", "test ROC"),
    ("test_pr_auc", "test PR"),
    ("test_alert_rate", "test alert"),
    ("test_recall", "test recall"),
    ("test_recall_at_1pct_oracle", "rec@1% oracle"),
]
KDD_COLUMNS_SHOWN = [
    ("test_f1", "test F1"),
    ("corrected_roc_auc", "corr ROC"),
    ("corrected_recall_1pct", "corr rec@1%"),
    ("corrected_alert_rate_1pct", "corr alert@1%"),
]


def table(results: dict[str, Any], columns) -> str:
    lines = [f"{'method':14s} {'schema':24s} " + " ".join(f"{h:>13s}" for _, h in columns)]
    methods = dict.fromkeys(r["method"] for res in results.values() for r in res["rows"])
    for method in methods:
        for schema, res in results.items():
            rs = [r for r in res["rows"] if r["method"] == method]
            vals = [statistics.median([r[c] for r in rs]) for c, _ in columns]
            lines.append(
                f"{method:14s} {schema:24s} "
                + " ".join(f"{v:13.4f}" for v in vals)
                + f"   (median of {len(rs)})"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = zeek_real.parser(__doc__)
    p.set_defaults(methods=["mahalanobis", "iforest", "vaegmm"], kdd_methods=["mahalanobis"])
    p.add_argument("--cost-only", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument(
        "--memory-keys",
        type=int,
        default=5_000,
        help="active keys per role for the memory figure (scaled to 100,000)",
    )
    args = zeek_real.parse(p, argv)
    out: dict[str, Any] = {"config": {k: v for k, v in vars(args).items()}}
    if not args.cost_only:
        out["detection"] = detection(args)
    out["cost"] = cost(args)
    pathlib.Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    if not args.cost_only:
        print(
            f"\nZeek: train {pathlib.Path(args.train).name}, test "
            f"{pathlib.Path(args.test).name}, {args.target_alert_rate:.0%} alert target"
        )
        print(table(out["detection"]["zeek"], COLUMNS))
        if out["detection"]["kdd"]:
            print(f"\nKDD reference protocol, {args.kdd_n_train:,} training rows")
            print(table(out["detection"]["kdd"], KDD_COLUMNS_SHOWN))
    c = out["cost"]
    print(
        f"\nDecode + encode, {c['records']:,} Zeek records, batches of {c['batch']}, median of "
        f"{c['repeats']}: "
        + ", ".join(f"{k} {v:,.0f} records/s" for k, v in c["median_records_per_s"].items())
        + f"; ratio {c['ratio_windows_to_plain']:.2f}"
    )
    m = c["memory"]
    print(
        f"Window state: {m['mib_per_100k_keys']:.1f} MiB per 100,000 active keys "
        f"({m['connections_per_key']} connections each; measured with {m['keys_held']:,} keys)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
