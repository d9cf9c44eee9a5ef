"""Several workers' scorers on one GPU: do they all start, and how much GPU memory does each
take?  Side by side, the shipped placement (each backend told to take memory as it needs it,
``stream_od.detector.device.share_the_gpu``) and the backends' own default (JAX takes 75 % of
the GPU at first use, TensorFlow all of it).

    KERAS_BACKEND=jax python benchmarks/gpu_sharing.py --artifact DIR --data FILE \\
        [--workers 4] [--json out.json]

Each of ``--workers`` processes loads the artifact, places it on the GPU as a worker with
``STREAM_OD_SCORING_DEVICE=gpu`` does (``Artifact.place_scoring``), and scores the data's rows
20 times in micro-batches of 1,000; they start together and hold their GPU until all have
scored.  Reports each process's outcome (scored, or its error's last line) and the GPU memory
``nvidia-smi`` saw per process.  Needs a GPU and Keras on TensorFlow or JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ONE = """
import sys, time
sys.path.insert(0, {repo!r})
from stream_od.artifact import Artifact
from stream_od.records import RecordDecoder
from trainer.score import input_values
art = Artifact.load({artifact!r})
where = art.place_scoring("gpu")
X = RecordDecoder(art.schema).decode(input_values({data!r}, art.schema.label_fields)).X
for _ in range(20):
    for i in range(0, len(X), 1000):
        art.score_and_contributions(X[i : i + 1000])
print("scored", len(X), "rows on", where, flush=True)
open({ready!r}, "w").close()
time.sleep({hold})
"""


def gpu_memory_mib() -> dict[int, float]:
    """MiB of GPU memory per process id, as nvidia-smi sees it."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
        ).stdout
    except FileNotFoundError:  # no NVIDIA driver tools: nothing to read
        return {}
    used = {}
    for line in out.splitlines():
        pid, mib = (p.strip() for p in line.split(","))
        used[int(pid)] = float(mib)
    return used


def run_arm(args, share: bool, tmp: Path) -> list[dict]:
    env = dict(os.environ)
    if not share:  # the backends' own defaults, set explicitly so share_the_gpu leaves them
        env |= {"XLA_PYTHON_CLIENT_PREALLOCATE": "true", "TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    procs = []
    for i in range(args.workers):
        ready = tmp / f"{'share' if share else 'default'}-{i}.ready"
        code = ONE.format(
            repo=str(REPO), artifact=args.artifact, data=args.data, ready=str(ready), hold=20
        )
        procs.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and any(
        not r.exists() and p.poll() is None for r, p in procs
    ):
        time.sleep(0.5)
    memory = gpu_memory_mib()
    rows = []
    for i, (_, p) in enumerate(procs):
        pid = p.pid
        p.terminate()
        out, err = p.communicate(timeout=60)
        last = (err.strip().splitlines() or [""])[-1]
        rows.append(
            {
                "worker": i,
                "scored": out.startswith("scored"),
                "said": out.strip() or last[-300:],
                "gpu_mib": memory.get(pid),
            }
        )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--json")
    args = p.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu-sharing-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    result = {"keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "arms": {}}
    for share in (True, False):
        arm = "shipped (take as needed)" if share else "backend default (preallocate)"
        rows = run_arm(args, share, tmp)
        result["arms"][arm] = rows
        print(f"\n{arm}, {args.workers} workers on one GPU ({result['keras_backend']}):")
        print("| worker | scored | GPU MiB | said |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['worker']} | {r['scored']} | {r['gpu_mib']} | {r['said'][:120]} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
