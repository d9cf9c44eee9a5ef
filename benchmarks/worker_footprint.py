"""Worker cold start and memory: the lean install against the training stack, side by side.

    python benchmarks/worker_footprint.py --artifact DIR [--repeats 5] [--json out.json]

Environments compared (one run, same artifact, same machine):

* ``lean``: a fresh virtual environment with ``pip install .`` (the worker alone), made in a
  temporary directory unless ``--lean-python`` names one;
* ``train``: the environment running this script (``stream-od[train]``), scoring with numpy as
  the worker now does;
* ``train-keras``: the same, scoring through Keras' compiled function, as the worker did
  before scoring moved to numpy (TensorFlow imported, the network built and traced).

Measured per environment (median of ``--repeats`` fresh processes):

* ``load``: a new Python process that verifies and loads the artifact as the worker does
  (``load_verified``), places its scoring, and scores one 1,000-row batch; wall time from the
  process' start to the first score, and its peak RSS;
* ``worker`` (with ``--bootstrap-servers`` and a broker there): ``stream-od worker`` from start
  until ``/readyz`` answers 200, and its resident memory then, read over HTTP from
  ``process_resident_memory_bytes``;
* the installed size of each environment's ``site-packages`` (no Docker engine here, so this
  stands in for the image size: the images add the same slim Python to it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LOAD = r"""
import resource, sys, time
t0 = time.perf_counter()
import numpy as np
from stream_od.registry.verify import load_verified
art = load_verified(sys.argv[1], None)
where = art.place_scoring("cpu")
if sys.argv[2] == "keras":
    art.detector.use_keras()
    where = "keras on cpu"
X = np.random.default_rng(0).normal(size=(1000, len(art.feature_names)))
art.score(X)
t1 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
heavy = sorted(m for m in ("tensorflow", "keras", "pandas", "sklearn") if m in sys.modules)
print(f"{t1 - t0:.4f} {rss:.1f} {where} {','.join(heavy) or '-'}")
"""


def lean_environment(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        check=True,
    )
    return python


def site_packages_mb(python: Path) -> float:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for root, _, files in os.walk(out.stdout.strip()):
        for f in files:
            path = os.path.join(root, f)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total / 2**20


def one_load(python: Path, artifact: str, mode: str) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [str(python), "-c", LOAD, artifact, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    wall = time.perf_counter() - start
    words = done.stdout.strip().splitlines()[-1].split()
    return {
        "wall_s": wall,
        "in_process_s": float(words[0]),
        "peak_rss_mb": float(words[1]),
        "scoring": " ".join(words[2:-1]),
        "imported": words[-1],
    }


def one_worker(python: Path, artifact: str, bootstrap: str, keras: bool) -> dict:
    from tests.kafka_support import create_topic, delete_topics
    from tests.worker_support import free_port, http_get, metric_total

    port = free_port()
    topic = f"footprint-{uuid.uuid4().hex[:8]}"
    topics = [topic, topic + ".alerts", topic + ".dlq"]
    for name in topics:
        create_topic(bootstrap, name)
    env = {
        **os.environ,
        "STREAM_OD_BOOTSTRAP_SERVERS": bootstrap,
        "STREAM_OD_ARTIFACT_PATH": artifact,
        "STREAM_OD_INPUT_TOPIC": topic,
        "STREAM_OD_ALERTS_TOPIC": topic + ".alerts",
        "STREAM_OD_DEAD_LETTER_TOPIC": topic + ".dlq",
        "STREAM_OD_METRICS_HOST": "127.0.0.1",
        "STREAM_OD_METRICS_PORT": str(port),
        "STREAM_OD_GROUP_ID": topic,
        "STREAM_OD_SCORING_DEVICE": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    code = "import sys; from stream_od.cli import main; sys.exit(main(['worker']))"
    if keras:  # the worker as it scored before: through Keras, TensorFlow imported (the
        # placement then still says "numpy on cpu": this is an emulation, not a setting)
        code = (
            "import sys; from stream_od.detector import _neural; "
            "_neural.NeuralGMMDetector.use_numpy = _neural.NeuralGMMDetector.use_keras; "
            "from stream_od.cli import main; sys.exit(main(['worker']))"
        )
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(python), "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                if http_get(f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        ready = time.perf_counter() - start
        rss = metric_total(
            http_get(f"http://127.0.0.1:{port}/metrics")[1], "process_resident_memory_bytes"
        )
        text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        scoring = [line for line in text.splitlines() if line.startswith("stream_od_scoring_info")]
        return {
            "ready_s": ready,
            "rss_mb": rss / 2**20,
            "scoring_info": scoring[0] if scoring else "",
        }
    finally:
        proc.terminate()
        proc.wait(60)
        delete_topics(bootstrap, topics)


def broker_up(bootstrap: str) -> bool:
    from tests.conftest import _broker_up

    return _broker_up(bootstrap)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True, help="a neural artifact (VAEGMM) to load")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--lean-python", help="the interpreter of an existing lean environment")
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="stream-od-lean-") as tmp:
        lean = Path(args.lean_python) if args.lean_python else lean_environment(Path(tmp) / "venv")
        envs = [
            ("lean", lean, "numpy"),
            ("train", Path(sys.executable), "numpy"),
            ("train-keras", Path(sys.executable), "keras"),
        ]
        with_broker = broker_up(args.bootstrap_servers)
        rows = []
        for name, python, mode in envs:
            loads = [one_load(python, args.artifact, mode) for _ in range(args.repeats)]
            row = {
                "environment": name,
                "scoring": loads[0]["scoring"],
                "imported": loads[0]["imported"],
                "load_and_score_s": statistics.median(r["wall_s"] for r in loads),
                "load_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in loads),
                "site_packages_mb": site_packages_mb(python),
            }
            if with_broker:
                runs = [
                    one_worker(python, args.artifact, args.bootstrap_servers, mode == "keras")
                    for _ in range(args.repeats)
                ]
                row["worker_ready_s"] = statistics.median(r["ready_s"] for r in runs)
                row["worker_rss_mb"] = statistics.median(r["rss_mb"] for r in runs)
                row["worker_scoring_info"] = runs[0]["scoring_info"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    cols = [
        "environment",
        "load_and_score_s",
        "load_peak_rss_mb",
        "worker_ready_s",
        "worker_rss_mb",
        "site_packages_mb",
        "imported",
    ]
    print(" | ".join(cols))
    for r in rows:
        print(
            " | ".join(
                f"{r[c]:.3g}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols
            )
        )
    base = rows[-1]
    for r in rows[:-1]:
        load = r["load_and_score_s"] / base["load_and_score_s"]
        rss = r["load_peak_rss_mb"] / base["load_peak_rss_mb"]
        print(f"{r['environment']} / train-keras: load and score {load:.2f}x, RSS {rss:.2f}x")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"config": vars(args), "rows": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
