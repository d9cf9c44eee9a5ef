"""Where a latency run's tail comes from: every batch of the worker timed, beside the broker's GC.

    python benchmarks/latency_stalls.py --artifact artifacts/demo-vaegmm --rate 33000 \
        --json out.json

One steady-state latency run of ``benchmarks/stream_throughput.py`` (same topics, same load
from ``stream-od replay`` in its own process, same 2-second warm-up), with the worker's batches
timed one by one: when each started and ended, its records, its oldest record's wait
(LogAppendTime to the batch's start), the seconds in its transaction commit, and the wall and
CPU seconds of its decoding and scoring (CPU-only stages: wall beyond CPU is waiting for a
core).  Meanwhile ``jstat -gc`` samples the local broker's JVM once a second (when ``jstat``
and the broker's process are found), so a commit that stalled can be set against the broker's
young collections.  The table lists the slowest batches, the JSON holds every batch and every
sample.  Nothing here is asserted: it is a diagnosis, run when the p99 needs explaining.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import stream_throughput  # noqa: E402

from stream_od.artifact import Artifact  # noqa: E402
from stream_od.kafka.messages import key_size, topic_partition  # noqa: E402
from stream_od.records import RecordDecoder  # noqa: E402


class TimedWorker(stream_throughput.worker_with(overlap_commits=False)):
    """The worker, recording each batch: start, end, records, oldest stamp, commit seconds.
    It commits one batch at a time (``overlap_commits`` off, the default): overlapped, a
    batch's commit runs beside the next batch's decoding, and a batch has no one start and end
    to time."""

    batches: list[dict] = []
    # the first batches' values, key sizes and partitions
    kept: list[tuple[list[bytes], list[int], list[tuple[str, int]]]] = []
    scorer = None  # the last scorer, to redo the kept batches alone after the run

    def _score(self, messages):
        # wall seconds against this thread's CPU seconds: decoding and scoring are CPU only,
        # so wall beyond CPU is time the thread waited for a core (or the GIL)
        if len(TimedWorker.kept) < 200:
            TimedWorker.kept.append(
                (
                    [m.value() for m in messages],
                    list(map(key_size, messages)),
                    list(map(topic_partition, messages)),
                )
            )
        TimedWorker.scorer = self.scorer
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return super()._score(messages)
        finally:
            self._cpu_stage = (time.perf_counter() - wall, time.thread_time() - cpu)

    def _commit(self, messages, metadata):
        t = time.time()
        try:
            return super()._commit(messages, metadata)
        finally:
            self._commit_s = time.time() - t

    def process(self, messages):
        self._commit_s, self._cpu_stage = 0.0, (0.0, 0.0)
        start = time.time()
        oldest = min(m.timestamp()[1] for m in messages) / 1000.0
        result = super().process(messages)
        TimedWorker.batches.append(
            {
                "start": start,
                "end": time.time(),
                "records": len(messages),
                "oldest_wait_s": start - oldest,
                "commit_s": self._commit_s,
                "decode_score_wall_s": self._cpu_stage[0],
                "decode_score_cpu_s": self._cpu_stage[1],
            }
        )
        return result


def decode_and_score_alone(scorer, kept) -> dict:
    """Decode and score the kept batches again, one after another, best of 3 passes: what the
    loop's CPU-only stages cost with the machine to themselves."""
    best = {"records": sum(len(v) for v, _, _ in kept), "wall_s": float("inf"), "cpu_s": 0.0}
    if scorer is None or not kept:
        return best | {"wall_s": float("nan"), "cpu_s": float("nan")}
    live = scorer.decoder
    for _ in range(3):
        # A fresh decoder each pass, as the worker's was at the start: a windowed schema's
        # windows then see each partition's records once, in order, as they did in the run.
        decoder = RecordDecoder(
            live.schema,
            input_format=live.input_format,
            max_record_bytes=live.max_record_bytes,
            carried_roles=live.carried_roles,
            skipped_roles=live.skipped_roles,
        )
        wall, cpu = time.perf_counter(), time.thread_time()
        for values, extra, partitions in kept:
            X = decoder.decode(values, extra, partitions if decoder.windowed else None).X
            if len(X):
                scorer.model.score_and_contributions(X)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        if wall < best["wall_s"]:
            best |= {"wall_s": wall, "cpu_s": cpu}
    return best


def start_jstat(pid: int | None) -> subprocess.Popen | None:
    if pid is None or shutil.which("jstat") is None:
        return None
    return subprocess.Popen(
        ["jstat", "-gc", "-t", str(pid), "1000"], stdout=subprocess.PIPE, text=True
    )


def young_gcs(lines: list[str], t_start: float) -> list[dict]:
    """Per jstat sample (one a second): young collections and their seconds since the last."""
    at = next((i for i, line in enumerate(lines) if "YGC" in line.split()), None)
    if at is None:
        return []
    header = lines[at].split()
    rows = [line.split() for line in lines[at + 1 :] if line.strip()]
    ygc, ygct = header.index("YGC"), header.index("YGCT")
    out = []
    for i, (a, b) in enumerate(zip(rows, rows[1:])):
        out.append(
            {
                "second": i + 1,
                "at": t_start + i + 1,
                "young_gcs": int(b[ygc]) - int(a[ygc]),
                "young_gc_s": float(b[ygct]) - float(a[ygct]),
            }
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True)
    p.add_argument(
        "--data", nargs="+", default=[str(REPO.parent / "shared/data/kddcup.data_10_percent.gz")]
    )
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--rate", type=float, required=True, help="offered records/s")
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--top", type=int, default=10, help="slowest batches to list")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    from trainer.readers import is_sensor_log

    run_args = types.SimpleNamespace(
        bootstrap=args.bootstrap,
        alert_formats=["native"],
        sensor=is_sensor_log(args.data),
        data=args.data,
        latency_seconds=args.latency_seconds,
        timestamp_type="LogAppendTime",
    )
    artifact = Artifact.load(args.artifact)
    jstat = start_jstat(stream_throughput.broker_pid())
    t_jstat = time.time()
    result = stream_throughput.latency_run(run_args, artifact, args.rate, worker_class=TimedWorker)
    gcs: list[dict] = []
    if jstat is not None:
        jstat.terminate()
        out, _ = jstat.communicate(timeout=10)
        gcs = young_gcs(out.splitlines(), t_jstat)
    batches = TimedWorker.batches
    dur = np.array([b["end"] - b["start"] for b in batches])
    commit = np.array([b["commit_s"] for b in batches])
    print(
        f"{args.rate:,.0f} records/s: p50/p95/p99 "
        f"{result['latency_p50_ms']:.0f} / {result['latency_p95_ms']:.0f} / "
        f"{result['latency_p99_ms']:.0f} ms over {len(batches)} batches (warm-up included)"
    )
    print(
        f"batch ms p50 / p99 / max: {np.median(dur) * 1e3:.0f} / "
        f"{np.percentile(dur, 99) * 1e3:.0f} / {dur.max() * 1e3:.0f}; commit ms p50 / p99 / max: "
        f"{np.median(commit) * 1e3:.0f} / {np.percentile(commit, 99) * 1e3:.0f} / "
        f"{commit.max() * 1e3:.0f}"
    )
    wall = sum(b["decode_score_wall_s"] for b in batches)
    cpu = sum(b["decode_score_cpu_s"] for b in batches)
    records = max(sum(b["records"] for b in batches), 1)
    print(
        f"decode + score: {wall / records * 1e6:.1f} us a record on the clock, "
        f"{cpu / records * 1e6:.1f} us of the loop thread's CPU ({cpu / max(wall, 1e-9):.0%})"
    )
    alone = decode_and_score_alone(TimedWorker.scorer, TimedWorker.kept)
    print(
        f"the same code on {alone['records']:,} of these records after the run, with nothing "
        f"else running: {alone['wall_s'] / alone['records'] * 1e6:.1f} us a record on the "
        f"clock, {alone['cpu_s'] / alone['records'] * 1e6:.1f} us of CPU"
    )
    print("\n| batch start, s | records | batch ms | commit ms | broker young GC ms (GCs) |")
    print("|---|---|---|---|---|")
    t0 = batches[0]["start"] if batches else 0.0
    for i in sorted(np.argsort(-dur)[: args.top]):
        b = batches[i]
        second = next((g for g in gcs if g["at"] - 1 <= b["start"] < g["at"]), None)
        gc_ms = f"{second['young_gc_s'] * 1e3:.0f} ({second['young_gcs']})" if second else "-"
        print(
            f"| {b['start'] - t0:.2f} | {b['records']} | {dur[i] * 1e3:.0f} | "
            f"{b['commit_s'] * 1e3:.0f} | {gc_ms} |"
        )
    per = [g["young_gc_s"] / g["young_gcs"] for g in gcs if g["young_gcs"]]
    if per:
        print(
            f"\nbroker: {sum(g['young_gcs'] for g in gcs)} young GCs, median "
            f"{np.median(per) * 1e3:.0f} ms, longest second {max(per) * 1e3:.0f} ms per GC"
        )
    elif gcs:  # sampled, and a short run can pass without one
        print(f"\nbroker: no young GC in the {len(gcs)} seconds sampled")
    else:
        print("\nbroker GC: not sampled (no jstat, or not exactly one kafka.Kafka process)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"result": result, "batches": batches, "broker_gc": gcs, "alone": alone}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
