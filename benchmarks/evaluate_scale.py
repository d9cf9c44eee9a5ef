"""``stream-od evaluate`` on labelled logs of a million records and more: peak memory and time
of a baseline commit's ``evaluate`` and this tree's, side by side, on the same logs and model.

    python benchmarks/evaluate_scale.py --json out.json [--rows 300000 1000000]
        [--baseline REV] [--artifact DIR | --train-data FILE --detector KIND]
        [--data FILE ...] [--plots] [--score]

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
runs on each log too, and its two outputs must be the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_scale import _run, write_week  # noqa: E402

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
    code, *_, stderr = _run(argv, workdir)
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
    code, wall, usage, _, stderr = _run(argv, out.parent, cwd=tree)
    if code != 0:
        raise SystemExit(f"evaluate ({tree}) failed ({code}):\n{stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "report": {k: v for k, v in report.items() if k not in NOT_COMPARED},
    }


def score_once(
    tree: pathlib.Path, log: pathlib.Path, artifact: pathlib.Path, out: pathlib.Path
) -> dict[str, Any]:
    """``score`` of ``tree``'s code, in its own process; its output's digest, to compare."""
    argv = [sys.executable, "-m", "stream_od.cli", "score", "--artifact", str(artifact)]
    argv += ["--data", str(log), "--out", str(out)]
    code, wall, usage, stdout, stderr = _run(argv, out.parent, cwd=tree)
    if code != 0:
        raise SystemExit(f"score ({tree}) failed ({code}):\n{stderr[-3000:]}")
    counts = json.loads(stdout.strip().splitlines()[-1])
    digest = hashlib.sha256()
    with out.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    out.unlink()
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "report": {"records": counts["records"], "sha256": digest.hexdigest()},
    }


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
                for command in ("evaluate", "score") if args.score else ("evaluate",):
                    runs = {}
                    for name, tree in reversed(trees.items()):  # the baseline first
                        runs[name] = (
                            evaluate_once(tree, log, artifact, workdir / "report", args.plots)
                            if command == "evaluate"
                            else score_once(tree, log, artifact, workdir / "scores.jsonl")
                        )
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
