"""The worker's latency against the local broker's garbage collector, side by side.

    python benchmarks/broker_gc.py --artifact artifacts/demo-vaegmm --rate 30000 --json out.json

At half load a few batches take several times the usual time, most often in their transaction's
commit, and about half of the slowest fell in a second with one of the broker's young
collections (``benchmarks/latency_stalls.py``).  This runs the same latency measurement with
the project's local broker (``deploy/kafka/kafka.sh``) under each collector of ``--arms``: for
each repeat, for each arm in rotation, the broker is restarted with that arm's
``KAFKA_GC_OPTS`` and warmed up by a run that is not counted, then
``benchmarks/stream_throughput.py --only-latency --rates RATE``
measures the worker's steady-state latency (its own histogram, after the warm-up).  Medians
of the repeats per arm, a table, and the runs in the JSON.

It stops and starts the broker that ``kafka.sh`` manages (by default the local one on
127.0.0.1:9092; ``STREAM_OD_KAFKA_DIR`` and ``STREAM_OD_KAFKA_PORT`` choose another, as for the
script), checks from the broker's command line that it runs the arm's options, keeps its
data, and leaves it running with the shipped settings.  A production broker runs on machines
of its own; what this says is how much of this machine's tail is the broker's collector.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAFKA = REPO / "deploy" / "kafka" / "kafka.sh"

#: Apache Kafka's own start scripts (kafka-server-start.sh, kafka-run-class.sh): G1 with the
#: 20 ms pause goal kafka.sh also sets, marking from 35 % occupancy, and a heap fixed at 1 GB
#: from the start, where kafka.sh starts at 256 MB and grows to 1 GB
KAFKA_SCRIPTS = (
    "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
    "-XX:+ExplicitGCInvokesConcurrent"
)
#: arm -> (KAFKA_GC_OPTS, KAFKA_HEAP_OPTS); None leaves kafka.sh's own default, so ``g1`` is the
#: broker as shipped (G1, 20 ms pause goal), whatever kafka.sh ships
ARMS: dict[str, tuple[str | None, str | None]] = {
    "g1": (None, None),
    "zgc": ("-XX:+UseZGC", None),
    "shenandoah": ("-XX:+UseShenandoahGC", None),
    "parallel": ("-XX:+UseParallelGC", None),
    "kafka-scripts": (KAFKA_SCRIPTS, "-Xmx1G -Xms1G"),
}
KEYS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "loop_busy_share", "cpu_broker_cores")


def broker(command: str, arm: tuple[str | None, str | None] = (None, None)) -> None:
    """``kafka.sh COMMAND`` with the arm's options; an option the arm leaves to kafka.sh is
    taken out of the environment too, so no setting of the caller's leaks into an arm."""
    env = {**os.environ, "PYTHON": sys.executable}
    for name, value in zip(("KAFKA_GC_OPTS", "KAFKA_HEAP_OPTS"), arm):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    subprocess.run(["bash", str(KAFKA), command], env=env, check=True, stdout=subprocess.DEVNULL)
    wanted = " ".join(o for o in arm if o)
    if command == "up" and wanted:
        pid = (broker_dir() / "kafka.pid").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        if not set(wanted.split()) <= set(argv):
            raise SystemExit(f"the broker (pid {pid}) did not start with {wanted}: {argv}")


def broker_dir() -> Path:
    """Where kafka.sh keeps the broker's pid and data (its STREAM_OD_KAFKA_DIR)."""
    return Path(os.environ.get("STREAM_OD_KAFKA_DIR", REPO / ".kafka"))


def bootstrap() -> str:
    return f"127.0.0.1:{os.environ.get('STREAM_OD_KAFKA_PORT', '9092')}"


def latency_run(args: argparse.Namespace, seconds: float) -> dict:
    """One latency run of stream_throughput.py, which prints it as a JSON line."""
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "stream_throughput.py"),
        *("--artifact", args.artifact, "--only-latency", "--repeats", "1"),
        *("--rates", str(args.rate), "--latency-seconds", str(seconds)),
        *("--bootstrap", bootstrap(), "--count", str(args.count)),
        *(["--data", *args.data] if args.data else []),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"stream_throughput.py failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True)
    p.add_argument("--data", nargs="+", default=None, help="as stream_throughput.py's --data")
    p.add_argument("--rate", type=float, required=True, help="offered records/s")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=["g1", "zgc", "shenandoah"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--count", type=int, default=100_000, help="as stream_throughput.py's --count")
    p.add_argument(
        "--broker-warmup-seconds",
        type=float,
        default=20.0,
        help="a latency run at the same rate after each restart, not counted: a fresh broker's "
        "JIT compiles for its first tens of seconds",
    )
    p.add_argument("--json")
    args = p.parse_args(argv)

    runs: dict[str, list[dict]] = {arm: [] for arm in args.arms}
    try:
        for r in range(args.repeats):
            k = r % len(args.arms)
            for arm in args.arms[k:] + args.arms[:k]:  # rotated: no arm always runs first
                broker("down")
                broker("up", ARMS[arm])
                latency_run(args, args.broker_warmup_seconds)  # the JVM's JIT, not measured
                run = latency_run(args, args.latency_seconds)
                runs[arm].append(run)
                print(f"repeat {r} {arm}: p99 {run['latency_p99_ms']:.0f} ms", file=sys.stderr)
    finally:
        broker("down")
        broker("up")  # as shipped

    result = {
        "artifact": args.artifact,
        "offered_rps": args.rate,
        "repeats": args.repeats,
        "arms": {
            arm: {
                "gc_opts": ARMS[arm][0] or "kafka.sh's",
                "heap_opts": ARMS[arm][1] or "kafka.sh's",
                **{k: statistics.median(r[k] for r in runs[arm]) for k in KEYS},
                "latency_p99_ms_runs": [r["latency_p99_ms"] for r in runs[arm]],
                "runs": runs[arm],
            }
            for arm in args.arms
        },
    }
    print(
        f"\n{args.rate:,.0f} records/s offered, median of {args.repeats}\n"
        "| broker GC | p50 / p95 / p99 ms | p99 of the repeats | worker loop busy | broker "
        "cores |\n|---|---|---|---|---|"
    )
    for arm, a in result["arms"].items():
        repeats = ", ".join(f"{v:.0f}" for v in a["latency_p99_ms_runs"])
        print(
            f"| {arm} (`{a['gc_opts']}`, heap {a['heap_opts']}) | {a['latency_p50_ms']:.0f} / "
            f"{a['latency_p95_ms']:.0f} / {a['latency_p99_ms']:.0f} | {repeats} | "
            f"{a['loop_busy_share']:.0%} | {a['cpu_broker_cores']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
