"""The two images, built from the Dockerfile and measured: size, cold start, and a model that
travels from the trainer image to the worker image.

    python benchmarks/image_sizes.py [--builder buildah|docker|podman] [--standin-base]
                                     [--train-data ZEEK_LOG --score-data ZEEK_LOG] [--json out.json]

Steps, in one run:

1. build the worker image (the Dockerfile's default target) and the trainer image
   (``--target trainer``), each from its own lock file;
2. read each image's size and its base's, and the size of the environment it adds
   (``/opt/venv``);
3. train a VAEGMM in the trainer image on ``--train-data`` (a Zeek conn log), score
   ``--score-data`` with it in the worker image, which has no TensorFlow, and on this machine
   with ``stream-od score``; the two must agree to 1e-6;
4. time the worker image's cold start as ``benchmarks/worker_footprint.py`` does (a new Python
   process that verifies and loads the artifact and scores 1,000 rows), median of
   ``--repeats``, with its peak RSS.

``--standin-base`` is for machines that cannot pull ``python:3.11-slim-bookworm`` (this one
reaches Debian's packages, not Docker Hub): it builds a Debian bookworm base with
``debootstrap`` (Debian's Python 3.11, ``venv`` and ``pip``, the machine's CA bundle for its
TLS proxy) and tags it with that name, so the Dockerfile's own steps run unchanged on it. The
base is then not the official image and its size is not the official one's; what the images
add to it (``/opt/venv``) is the same. Needs root, ``debootstrap`` and ``buildah``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from worker_footprint import LOAD  # noqa: E402

BASE = "docker.io/library/python:3.11-slim-bookworm"
IMAGES = {"worker": ("stream-od:bench", None), "trainer": ("stream-od-trainer:bench", "trainer")}
SHARED_ZEEK = REPO.parent / "shared" / "data" / "zeek"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def sh(cmd: list[str], **kw) -> str:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, **kw).stdout


class Builder:
    """buildah, or a docker-compatible CLI (docker, podman): build, size, run with mounts."""

    def __init__(self, tool: str):
        self.tool = tool

    def build(self, tag: str, target: str | None) -> None:
        cmd = [self.tool, "build" if self.tool != "buildah" else "bud", "-t", tag]
        if self.tool == "buildah":
            cmd += ["--pull=never", "--layers=false"]
        cmd += ["--target", target] if target else []
        subprocess.run([*cmd, str(REPO)], check=True, stdout=sys.stderr)

    def size(self, image: str) -> int:
        """Bytes of the image's file system, measured inside it (``du``, one file system), the
        same way for every builder and for the base."""
        return int(self.run(image, ["du", "-sxb", "/"], {}, user="0").split()[0])

    def run(
        self, image: str, argv: list[str], mounts: dict[Path, str], user: str | None = None
    ) -> str:
        """``argv`` in a container of ``image`` (as the image's user unless ``user``)."""
        opts = [a for host, ctr in mounts.items() for a in ("-v", f"{host}:{ctr}")]
        opts += ["--user", user] if user else []
        if self.tool != "buildah":
            return sh([self.tool, "run", "--rm", *opts, "--entrypoint", argv[0], image, *argv[1:]])
        ctr = sh(["buildah", "from", "--pull=never", image]).strip()
        try:
            return sh(["buildah", "run", *opts, ctr, "--", *argv])
        finally:
            sh(["buildah", "rm", ctr])


def standin_base(workdir: Path) -> None:
    """A Debian bookworm base with Python 3.11 in place of the official slim image."""
    rootfs = workdir / "rootfs"
    sh(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3.11,python3.11-venv,python3-pip,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ]
    )
    for name in ("python", "python3"):
        (rootfs / "usr/local/bin" / name).symlink_to("/usr/bin/python3.11")
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):  # debootstrap keeps them
        deb.unlink()
    if CA_BUNDLE.exists():  # a TLS-intercepting proxy's CA, as the host trusts it
        shutil.copy(CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    ctr = sh(["buildah", "from", "scratch"]).strip()
    sh(["buildah", "copy", ctr, str(rootfs), "/"])
    sh(
        [
            "buildah",
            "config",
            "--env",
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "--env",
            f"PIP_CERT={CA_BUNDLE}",
            "--cmd",
            "python3",
            ctr,
        ]
    )
    sh(["buildah", "commit", "--rm", ctr, BASE])


def scores(path: Path) -> list[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r.get("score", float("nan")) for r in rows]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--builder", choices=("buildah", "docker", "podman"))
    p.add_argument("--standin-base", action="store_true")
    p.add_argument("--no-build", action="store_true", help="measure the images built before")
    p.add_argument("--train-data", default=str(SHARED_ZEEK / "008-zeek-mixed.conn.log.labeled"))
    p.add_argument("--score-data", default=str(SHARED_ZEEK / "010-zeek-mixed.conn.log.labeled"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    tool = args.builder or next(
        (t for t in ("docker", "podman", "buildah") if shutil.which(t)), None
    )
    if tool is None:
        print("error: no docker, podman or buildah on PATH", file=sys.stderr)
        return 2
    if tool == "buildah":
        os.environ.setdefault("STORAGE_DRIVER", "vfs")  # no overlay in an unprivileged sandbox
        os.environ.setdefault("BUILDAH_ISOLATION", "chroot")
    b = Builder(tool)
    work = Path(tempfile.mkdtemp(prefix="stream-od-images-"))
    os.chmod(work, 0o777)  # the images run as uid 10001
    if args.standin_base and not args.no_build:
        standin_base(work)
    for tag, target in IMAGES.values():
        if not args.no_build:
            b.build(tag, target)
    out: dict = {"builder": tool, "standin_base": args.standin_base, "base": BASE, "images": {}}
    out["base_bytes"] = b.size(BASE)
    for name, (tag, _) in IMAGES.items():
        venv = b.run(tag, ["du", "-sb", "/opt/venv"], {}).split()[0]
        out["images"][name] = {"tag": tag, "bytes": b.size(tag), "venv_bytes": int(venv)}

    data = {Path(args.train_data).resolve().parent: "/data"}
    train, score = Path(args.train_data).name, Path(args.score_data)
    b.run(
        IMAGES["trainer"][0],
        ["stream-od", "train", "--data", f"/data/{train}", "--schema", "zeek-conn"]
        + ["--detector", "vaegmm", "--out", "/work/art", "--quiet"],
        {**data, work: "/work"},
    )
    b.run(
        IMAGES["worker"][0],
        ["stream-od", "score", "--artifact", "/work/art", "--data", f"/score/{score.name}"]
        + ["--out", "/work/image-scores.jsonl"],
        {score.resolve().parent: "/score", work: "/work"},
    )
    host = work / "host-scores.jsonl"
    here = Path(sys.executable).parent / "stream-od"  # this environment's, on PATH or not
    sh(
        [
            str(here),
            "score",
            "--artifact",
            str(work / "art"),
            "--data",
            str(score),
            "--out",
            str(host),
        ]
    )
    a, h = scores(work / "image-scores.jsonl"), scores(host)
    worst = max(abs(x - y) for x, y in zip(a, h, strict=True))
    out["scores"] = {
        "rows": len(a),
        "max_abs_diff_image_vs_host": worst,
        "agree_1e-6": worst <= 1e-6,
    }

    (work / "load.py").write_text(LOAD)
    runs = []
    for _ in range(args.repeats):
        line = b.run(
            IMAGES["worker"][0], ["python", "/work/load.py", "/work/art", "numpy"], {work: "/work"}
        )
        seconds, rss, *rest = line.split()
        runs.append((float(seconds), float(rss), " ".join(rest)))
    out["worker_cold_start"] = {
        "load_to_first_score_s": statistics.median(r[0] for r in runs),
        "peak_rss_mb": statistics.median(r[1] for r in runs),
        "runs": runs,
    }

    mb = 1e6
    print(
        f"\nbase {BASE}{' (stand-in, debootstrap)' if args.standin_base else ''}: "
        f"{out['base_bytes'] / mb:,.0f} MB"
    )
    print(f"{'image':<9} {'size MB':>9} {'adds MB':>9} {'/opt/venv MB':>13}")
    for name, row in out["images"].items():
        adds = row["bytes"] - out["base_bytes"]
        print(
            f"{name:<9} {row['bytes'] / mb:>9,.0f} {adds / mb:>9,.0f} "
            f"{row['venv_bytes'] / mb:>13,.0f}"
        )
    cs = out["worker_cold_start"]
    print(
        f"worker image, VAEGMM trained in the trainer image: load to first score "
        f"{cs['load_to_first_score_s']:.2f} s, peak RSS {cs['peak_rss_mb']:.0f} MB "
        f"(median of {args.repeats}); scores vs this machine's: max |diff| {worst:.2e} "
        f"over {len(a):,} rows"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if out["scores"]["agree_1e-6"] else 1


if __name__ == "__main__":
    sys.exit(main())
