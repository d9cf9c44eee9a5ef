"""KDD Cup '99 loading and the seeded outlier-batch sampler of the reference protocol."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stream_od.schema import DEFAULT_FEATURES, KDD_CATEGORICAL, KDD_COLUMNS, FeatureSchema
from trainer.readers import open_binary

NORMAL_LABEL = "normal"


@dataclass(frozen=True)
class Batch:
    """Rows of raw features, the binary target (1 = attack) and the attack name."""

    X: np.ndarray
    y: np.ndarray
    attack: np.ndarray
    feature_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.y.shape[0])


def load_kdd(path: str | os.PathLike) -> pd.DataFrame:
    """Read a KDD Cup '99 file (CSV without header; plain, gzip, bzip2 or xz).

    Returns the 41 named columns plus ``attack`` (label without the trailing dot, e.g.
    ``normal``, ``smurf``) and ``target`` (0 for normal records, 1 for every attack).
    Row order is the file's order, which the seeded sampler relies on.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"KDD data file not found: {path}")
    dtypes = {c: (str if c in KDD_CATEGORICAL else np.float64) for c in KDD_COLUMNS}
    dtypes["label"] = str
    with open_binary(path) as fh:
        try:
            df = pd.read_csv(fh, header=None, names=[*KDD_COLUMNS, "label"], dtype=dtypes)
        except ValueError:  # a non-number in a numeric column; pandas' parser errors too
            raise ValueError(not_kdd(path)) from None
    if df.empty:
        raise ValueError(f"{path}: no records (the file is empty); stream-od reads {DATA_KINDS}")
    if not isinstance(df.index, pd.RangeIndex) or df["label"].isna().any():
        raise ValueError(not_kdd(path))  # lines of more fields (pandas indexes by the extra ones)
    df["attack"] = df.pop("label").str.rstrip(".")
    df["target"] = (df["attack"] != NORMAL_LABEL).astype(np.int64)
    return df


#: what --data may be, for messages about a file that is none of them
DATA_KINDS = (
    "KDD Cup '99 CSV lines (41 features and the label), a CSV export with a header row and a "
    "'label' column, Parquet, or a sensor log (Zeek TSV or JSON, Suricata EVE)"
)


def not_kdd(path: str) -> str:
    """Why ``path`` is no KDD Cup '99 file, naming its first line that is not a KDD record
    (read again, only on this error path), and what a data file may be."""
    fields = len(KDD_COLUMNS) + 1
    why = "its lines do not parse as KDD Cup '99 records"
    with open_binary(path) as fh:
        for n, raw in enumerate(fh, 1):
            values = raw.decode("utf-8", "replace").rstrip("\r\n").split(",")
            if values == [""]:
                continue  # a blank line, which the reader skips too
            if len(values) != fields:
                why = f"line {n} has {len(values)} comma-separated fields, not {fields}"
                break
            bad = next(
                (
                    (name, value)
                    for name, value in zip(KDD_COLUMNS, values)
                    if name not in KDD_CATEGORICAL and not _is_number(value)
                ),
                None,
            )
            if bad is not None:
                why = f"line {n}: {bad[0]} is {bad[1][:40]!r}, not a number"
                break
    return f"{path}: not a KDD Cup '99 file ({why}); stream-od reads {DATA_KINDS}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_records(path: str | os.PathLike) -> pd.DataFrame:
    """Training data from wherever it was exported: the raw KDD Cup '99 file (plain or
    compressed, no header), a CSV file with a header row, or a Parquet file.

    CSV with a header and Parquet need the feature columns by name and a ``label`` column
    (``normal`` or ``normal.`` for normal traffic, anything else is an attack).  Returns the
    same frame as :func:`load_kdd`: the columns plus ``attack`` and ``target``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file not found: {path}")
    if path.endswith(".parquet"):
        try:
            df = pd.read_parquet(path)
        except ImportError as e:
            raise ValueError(
                f"{path}: reading Parquet needs pyarrow (pip install 'stream-od[parquet]')"
            ) from e
        return _labelled(df, path)
    with open_binary(path) as fh:
        first = fh.readline().decode("utf-8", "replace").strip().split(",")
    if "label" in first:  # a header row: a CSV export with named columns
        with open_binary(path) as fh:
            return _labelled(pd.read_csv(fh), path)
    return load_kdd(path)


def _labelled(df: pd.DataFrame, path: str) -> pd.DataFrame:
    if "label" not in df.columns:
        raise ValueError(f"{path}: needs a 'label' column (normal / normal. for normal traffic)")
    df = df.copy()
    df["attack"] = df.pop("label").astype(str).str.rstrip(".")
    df["target"] = (df["attack"] != NORMAL_LABEL).astype(np.int64)
    return df


def frame_values(df: pd.DataFrame, schema: FeatureSchema) -> list:
    """The values of each schema field in a table, as :class:`~stream_od.features.FeatureEncoder`
    takes them: a float array for a numeric column without gaps, else a list of Python values
    with ``None`` for a missing one.  A field whose column the table lacks is an error that
    names it."""
    columns = []
    for f in schema.fields:
        if f.path not in df.columns:
            raise KeyError(
                f"the data has no column {f.path!r}, which schema {schema.name!r} "
                f"reads (field {f.name!r})"
            )
        col = df[f.path]
        if f.kind == "numeric" and pd.api.types.is_numeric_dtype(col) and not col.isna().any():
            columns.append(col.to_numpy(np.float64))
        else:
            columns.append([None if v is None or v != v else v for v in col.tolist()])
    return columns


def frame_matrix(df: pd.DataFrame, schema: FeatureSchema, what: str) -> np.ndarray:
    """The table's feature matrix through ``schema``; a row the schema refuses is an error
    (labelled KDD-style data is expected to be clean), named with ``what`` and the first row."""
    from stream_od.features import FeatureEncoder

    enc = FeatureEncoder(schema).encode(frame_values(df, schema), len(df))
    if enc.rejected:
        row, (reason, detail) = next(iter(enc.rejected.items()))
        raise ValueError(
            f"{what}: {len(enc.rejected)} rows cannot be encoded by schema "
            f"{schema.name!r} (first, row {row}: {reason}: {detail})"
        )
    return enc.X


def to_batch(df: pd.DataFrame, features=DEFAULT_FEATURES) -> Batch:
    features = tuple(features)
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise KeyError(f"features not in data: {missing}")
    return Batch(
        X=df.loc[:, list(features)].to_numpy(np.float64),
        y=df["target"].to_numpy(np.int64),
        attack=df["attack"].to_numpy(object),
        feature_names=features,
    )


def _draw(rng: np.random.RandomState, n_rows: int, n: int) -> np.ndarray:
    # n rows out of n_rows: without replacement unless more rows are asked for than exist.
    return rng.choice(n_rows, size=n, replace=n > n_rows)


def create_outlier_batch(data: Batch, n_samples: int, perc_outlier: float, *, seed: int) -> Batch:
    """A shuffled batch of ``n_samples`` rows of which ``int(perc_outlier/100*n)`` are attacks.

    Same procedure and random stream as Alibi Detect's ``create_outlier_batch`` under
    ``np.random.seed(seed)`` (normal rows drawn first, then outliers, then a permutation),
    but the seed is an argument: no global state is touched.
    """
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    if not 0 <= perc_outlier <= 100:
        raise ValueError("perc_outlier must be in [0, 100]")
    rng = np.random.RandomState(seed)
    normal_idx = np.flatnonzero(data.y == 0)
    outlier_idx = np.flatnonzero(data.y == 1)
    n_outlier = int(perc_outlier / 100 * n_samples)
    n_normal = n_samples - n_outlier
    if (n_normal and not normal_idx.size) or (n_outlier and not outlier_idx.size):
        raise ValueError("data lacks the normal or the attack rows the batch asks for")
    rows = np.concatenate(
        [
            normal_idx[_draw(rng, normal_idx.size, n_normal)],
            outlier_idx[_draw(rng, outlier_idx.size, n_outlier)],
        ]
    )
    rows = rows[rng.choice(n_samples, size=n_samples, replace=False)]
    return Batch(
        X=data.X[rows], y=data.y[rows], attack=data.attack[rows], feature_names=data.feature_names
    )


@dataclass(frozen=True)
class Protocol:
    """The reference protocol's three batches (raw, unstandardized features)."""

    train: Batch
    threshold: Batch
    test: Batch


def reference_protocol(
    data: Batch,
    *,
    n_train: int = 400_000,
    train_seed: int = 0,
    threshold_seed: int = 0,
    test_seed: int = 1,
) -> Protocol:
    """seed 0: ``n_train`` normal rows; seed 0: 1,000 rows with 5 % attacks (threshold);
    seed 1: 1,000 rows with 10 % attacks (test)."""
    return Protocol(
        train=create_outlier_batch(data, n_train, 0, seed=train_seed),
        threshold=create_outlier_batch(data, 1000, 5, seed=threshold_seed),
        test=create_outlier_batch(data, 1000, 10, seed=test_seed),
    )
