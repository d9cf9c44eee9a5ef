"""What the worker pays per batch for running ``send_offsets_to_transaction`` through
:class:`stream_od.kafka.blocking.BoundedCaller` (a queue put, a thread wake-up and a wait on a
Future) instead of calling it on its own thread: side by side.

    python benchmarks/bounded_call.py --json out.json

Two stand-ins for the call, each timed direct and through the caller, interleaved per repeat:
``noop`` (the hop alone) and ``sleep_1ms`` (a call that releases the GIL and waits on I/O for
1 ms, as the real one waits on the group coordinator; there the hop's cost includes waking the
waiting thread).  Reports the median microseconds per call over the repeats and the extra
microseconds per record at the worker's batch sizes.  The real call's round trip to the broker
(milliseconds) is in ``benchmarks/stream_throughput.py``'s end-to-end rates; on this noisy
machine those cannot resolve tens of microseconds per batch, which is why this measures the hop
on its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_od.kafka.blocking import BoundedCaller  # noqa: E402

TIMEOUT_S = 30.0  # the worker's TXN_CALL_S; only a bound here, never reached


def noop() -> None:
    return None


def sleep_1ms() -> None:
    time.sleep(0.001)


CALLS = {"noop": noop, "sleep_1ms": sleep_1ms}


def per_call_us(fn, bounded: BoundedCaller | None, n: int) -> float:
    t0 = time.perf_counter()
    if bounded is None:
        for _ in range(n):
            fn()
    else:
        for _ in range(n):
            bounded.call("bench", fn, TIMEOUT_S)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--calls", type=int, default=2000, help="calls per timing (noop)")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument(
        "--batch-records",
        type=int,
        nargs="+",
        default=[77, 300, 530],
        help="records per batch to express the cost per record at (the worker's batches "
        "in the Zeek runs: 77 at 3,000/s, 300-530 at half load)",
    )
    p.add_argument("--json", default=None)
    args = p.parse_args()

    bounded = BoundedCaller()
    times: dict[str, dict[str, list[float]]] = {c: {"direct": [], "bounded": []} for c in CALLS}
    for r in range(args.repeats):
        for name, fn in CALLS.items():
            n = args.calls if name == "noop" else max(1, args.calls // 10)
            arms = [("direct", None), ("bounded", bounded)]
            for arm, caller in arms if r % 2 == 0 else arms[::-1]:
                times[name][arm].append(per_call_us(fn, caller, n))
    result: dict = {"repeats": args.repeats, "calls": args.calls, "per_call_us": {}}
    print(
        f"| call | direct µs (median of {args.repeats}) | through BoundedCaller µs | extra µs a "
        "batch | "
        + " | ".join(f"extra µs a record at {b}" for b in args.batch_records)
        + " |\n|---|---|---|---|"
        + "---|" * len(args.batch_records)
    )
    for name, arms in times.items():
        direct, via = statistics.median(arms["direct"]), statistics.median(arms["bounded"])
        paired = statistics.median(b - d for b, d in zip(arms["bounded"], arms["direct"]))
        result["per_call_us"][name] = {
            "direct": direct,
            "bounded": via,
            "extra_paired_median": paired,
            "runs": arms,
        }
        print(
            f"| {name} | {direct:.1f} | {via:.1f} | {paired:.1f} | "
            + " | ".join(f"{paired / b:.3f}" for b in args.batch_records)
            + " |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
