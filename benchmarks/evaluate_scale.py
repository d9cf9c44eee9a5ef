"""``stream-od evaluate`` on labelled logs of a million records and more: peak memory and time
of a baseline commit's ``evaluate`` and this tree's, side by side, on the same logs and model.

    python benchmarks/evaluate_scale.py --json out.json [--rows 300000 1000000]
        [--baseline REV] [--artifact DIR | --train-data FILE --detector KIND]
        [--data FILE ...] [--plots] [--score] [--replay [--bootstrap HOST:PORT]]

The labelled logs are made from a real labelled capture (default: ``010-zeek-mixed`` in
``../shared/data/zeek/``, benign and malicious rows), its records repeated with ``ts`` moved on
by the capture's span each pass, labels kept, written as Zeek's JSON writer writes them, one
file per ``--rows`` value.  The model is ``--artifact``, or one trained here (default: a
VAEGMM, 5 epochs, on ``008-zeek-mixed``, the day before): the scores' quality is not what is
measured.
``--baseline REV`` (default: none) checks that commit out in a temporary git worktree and runs
its ``evaluate`` with this interpreter; each run is its own process, whose wall time and peak
resident memory (``wait4``'s ``ru_maxrss``) are reported, with whether the two reports agree
(every key but the paths and plots).  Without ``--plots`` both run with ``--no-plots``: a
baseline that plots every row draws millions of points.  With ``--score``, ``stream-od score``
runs on each log too, and its two outputs must be the same bytes.  With ``--replay``,
``stream-od replay`` sends each log to a topic of its own (one partition, on the broker at
``--bootstrap``, e.g. ``make kafka-up``'s), and the two topics must hold the same records: the
same keys, values and headers in the same order, compared by a sha256 over them read back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile
import uuid
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child_runs import measured, run_child, score_child  # noqa: E402
from benchmarks.train_scale import write_week  # noqa: E402

ZEEK = ROOT.parent / "shared" / "data" / "zeek"
DEFAULT_DATA = ZEEK / "010-zeek-mixed.conn.log.labeled"
TRAIN_DATA = ZEEK / "008-zeek-mixed.conn.log.labeled"
#: what differs between two reports of the same evaluation: where they were written, and the
#: plots (the baseline may plot every row, this tree at most a sample)
NOT_COMPARED = ("artifact", "data", "out_dir", "plots", "plotted")


def train_model(data: str, detector: str, workdir: pathlib.Path) -> pathlib.Path:
    out = workdir / "model"
    argv = [sys.executable, "-m", "stream_od.cli", "train", "--data", data, "--schema", "zeek-conn"]
    argv += ["--detector", detector, *(("--epochs", "5") if detector != "mahalanobis" else ())]
    argv += ["--out", str(out), "--quiet"]
    code, *_, stderr = run_child(argv, workdir)
    if code not in (0, 3):  # 3: written, its quality gate failed (5 epochs)
        raise SystemExit(f"train failed ({code}):\n{stderr[-3000:]}")
    return out


def evaluate_once(
    tree: pathlib.Path, log: pathlib.Path, artifact: pathlib.Path, out: pathlib.Path, plots: bool
) -> dict[str, Any]:
    """``evaluate`` of ``tree``'s code, in its own process (run from ``tree``, whose packages
    come first on the path)."""
    argv = [sys.executable, "-m", "stream_od.cli", "evaluate", "--artifact", str(artifact)]
    argv += ["--data", str(log), "--out", str(out), *(() if plots else ("--no-plots",))]
    code, wall, usage, _, stderr = run_child(argv, out.parent, cwd=tree)
    if code != 0:
        raise SystemExit(f"evaluate ({tree}) failed ({code}):\n{stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    return {
        **measured(wall, usage),
        "report": {k: v for k, v in report.items() if k not in NOT_COMPARED},
    }


def score_once(
    tree: pathlib.Path, log: pathlib.Path, artifact: pathlib.Path, out: pathlib.Path
) -> dict[str, Any]:
    """``score`` of ``tree``'s code, in its own process; its output's digest, to compare."""
    run = score_child(log, artifact, out, tree)
    report = {"records": run.pop("records"), "sha256": run.pop("sha256")}
    run.pop("alerts")
    return {**run, "report": report}


def replay_once(
    tree: pathlib.Path, log: pathlib.Path, bootstrap: str, workdir: pathlib.Path
) -> dict[str, Any]:
    """``replay`` of ``tree``'s code to a new one-partition topic, in its own process; what
    the topic then holds, as a digest, to compare."""
    from stream_od.kafka.topics import delete_topics, ensure_topics

    topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
    ensure_topics({"bootstrap.servers": bootstrap}, {topic: 1})
    argv = [sys.executable, "-m", "stream_od.cli", "replay", "--data", str(log), "--quiet"]
    argv += ["--topic", topic, "--bootstrap-servers", bootstrap]
    try:
        code, wall, usage, _, stderr = run_child(argv, workdir, cwd=tree)
        if code != 0:
            raise SystemExit(f"replay ({tree}) failed ({code}):\n{stderr[-3000:]}")
        records, digest = topic_digest(bootstrap, topic)
    finally:
        delete_topics({"bootstrap.servers": bootstrap}, [topic])
    return {**measured(wall, usage), "report": {"records": records, "sha256": digest}}


def topic_digest(bootstrap: str, topic: str) -> tuple[int, str]:
    """Records in ``topic``'s one partition and a sha256 over each one's key, value and
    headers, in offset order (each part length-prefixed, so no two streams collide).  Hashed
    as they are read, not through ``stream_od.kafka.reader.read_to_end``, which would hold
    3,000,000 messages in this process."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, low)])
        digest, seen, last = hashlib.sha256(), 0, low - 1
        while last < high - 1:
            for msg in consumer.consume(10_000, timeout=5):
                if msg.error():
                    raise SystemExit(f"reading {topic}: {msg.error()}")
                parts = [msg.key() or b"", msg.value() or b""]
                parts += [x for k, v in msg.headers() or () for x in (k.encode(), v or b"")]
                for part in parts:
                    digest.update(len(part).to_bytes(4, "little") + part)
                seen, last = seen + 1, msg.offset()
        return seen, digest.hexdigest()
    finally:
        consumer.close()


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], help="the capture to repeat")
    p.add_argument("--rows", nargs="+", type=int, default=[300_000, 1_000_000])
    p.add_argument("--baseline", default=None, help="a commit to run side by side (e.g. ce499a7)")
    p.add_argument("--artifact", default=None, help="the model (default: trained here)")
    p.add_argument("--train-data", default=str(TRAIN_DATA), help="what the model is trained on")
    p.add_argument("--detector", default="vaegmm", help="the model trained here")
    p.add_argument("--plots", action="store_true", help="write the plots too")
    p.add_argument("--score", action="store_true", help="run stream-od score too")
    p.add_argument("--replay", action="store_true", help="run stream-od replay too")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="the broker for --replay")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    rows_out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stream-od-evaluate-scale-") as tmp:
        workdir = pathlib.Path(tmp)
        trees = {"this tree": ROOT}
        if args.baseline:
            base = workdir / "baseline"
            git = ["git", "-C", str(ROOT), "worktree"]
            subprocess.run([*git, "add", "--detach", str(base), args.baseline], check=True)
            trees[args.baseline] = base
        try:
            artifact = (
                pathlib.Path(args.artifact).resolve()
                if args.artifact
                else train_model(args.train_data, args.detector, workdir)
            )
            for rows in args.rows:
                log = workdir / f"labelled-{rows}.json"
                write_week(args.data, rows, log, labels=True)
                print(f"{rows:,} records: {log.stat().st_size / 1e6:,.1f} MB", file=sys.stderr)
                commands = ["evaluate", *(["score"] * args.score), *(["replay"] * args.replay)]
                for command in commands:
                    runs = {}
                    for name, tree in reversed(trees.items()):  # the baseline first
                        if command == "evaluate":
                            out = workdir / "report"
                            runs[name] = evaluate_once(tree, log, artifact, out, args.plots)
                        elif command == "score":
                            out = workdir / "scores.jsonl"
                            runs[name] = score_once(tree, log, artifact, out)
                        else:
                            runs[name] = replay_once(tree, log, args.bootstrap, workdir)
                        print(
                            f"  {command} of {name}: {runs[name]['wall_s']:.1f} s, "
                            f"peak {runs[name]['peak_rss_mb']:,.0f} MB",
                            file=sys.stderr,
                        )
                    reports = [r["report"] for r in runs.values()]
                    same = all(r == reports[0] for r in reports)
                    rows_out.append(
                        {"rows": rows, "command": command, "runs": runs, "reports_agree": same}
                    )
                log.unlink()
        finally:
            if args.baseline:
                subprocess.run([*git, "remove", "--force", str(base)], check=False)
    print("| records | command | code | peak memory | wall | outputs agree |")
    print("|---|---|---|---|---|---|")
    for r in rows_out:
        for name, run in r["runs"].items():
            print(
                f"| {r['rows']:,} | {r['command']} | {name} | {run['peak_rss_mb']:,.0f} MB | "
                f"{run['wall_s']:.1f} s | {'yes' if r['reports_agree'] else 'NO'} |"
            )
    if args.json:
        result = {"data": args.data, "baseline": args.baseline, "plots": args.plots}
        result["results"] = rows_out
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(r["reports_agree"] for r in rows_out) else 1


if __name__ == "__main__":
    sys.exit(main())
