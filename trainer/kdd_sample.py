"""The KDD Cup '99 sample shipped inside the package (``stream_od/data/kdd_sample.csv.gz``), so
``make demo`` runs on a machine that has nothing else.

    python -m trainer.kdd_sample ../shared/data/kddcup.data_10_percent.gz \\
        stream_od/data/kdd_sample.csv.gz

Stratified by label from the 10 % training file: 30,000 of its normal rows, and 20,000 attack
rows shared among the attack types in proportion to their counts, with at least 50 rows (or
all of them) of each, so every attack type the file has is in the sample.  Rows are drawn with
a fixed seed and kept in file order; the lines are the file's own, byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import Counter

import numpy as np

NORMAL_ROWS = 30_000
ATTACK_ROWS = 20_000
MIN_PER_TYPE = 50
SEED = 0


def sample_lines(lines: list[bytes], *, seed: int = SEED) -> list[bytes]:
    labels = [line.rsplit(b",", 1)[-1].strip().rstrip(b".") for line in lines]
    counts = Counter(labels)
    attacks = {k: v for k, v in counts.items() if k != b"normal"}
    total_attacks = sum(attacks.values())
    want = {b"normal": min(NORMAL_ROWS, counts[b"normal"])}
    for label, n in attacks.items():
        want[label] = min(n, max(MIN_PER_TYPE, round(ATTACK_ROWS * n / total_attacks)))
    rng = np.random.RandomState(seed)
    by_label: dict[bytes, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    keep: list[int] = []
    for label in sorted(by_label):
        rows = by_label[label]
        keep.extend(rng.choice(rows, size=want[label], replace=False).tolist())
    return [lines[i] for i in sorted(keep)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("source", help="kddcup.data_10_percent.gz")
    p.add_argument("out", help="where to write the sample (.csv.gz)")
    args = p.parse_args(argv)
    with gzip.open(args.source, "rb") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    sample = sample_lines(lines)
    # mtime=0: the same sample gives the same bytes, whenever it is made
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(b"\n".join(sample) + b"\n")
    labels = Counter(line.rsplit(b",", 1)[-1].strip() for line in sample)
    print(
        f"{len(sample):,} rows of {len(lines):,}: {labels[b'normal.']:,} normal, "
        f"{len(sample) - labels[b'normal.']:,} attacks of {len(labels) - 1} types",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
