import bz2
import gzip
import lzma
import pathlib

import numpy as np
import pytest

from trainer.data import Batch, create_outlier_batch, load_kdd, load_records, to_batch

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz"


def _toy(n_normal=50, n_attack=10):
    X = np.arange(n_normal + n_attack, dtype=float)[:, None]
    y = np.r_[np.zeros(n_normal, int), np.ones(n_attack, int)]
    return Batch(
        X=X, y=y, attack=np.where(y == 1, "smurf", "normal").astype(object), feature_names=("a",)
    )


def test_load_fixture():
    df = load_kdd(FIXTURE)
    assert df.shape[0] == 4000 and int(df["target"].sum()) == 1000
    assert set(df.loc[df.target == 0, "attack"]) == {"normal"}
    b = to_batch(df)
    assert b.X.shape == (4000, 18) and b.X.dtype == np.float64


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress, lambda data: data])
def test_a_kdd_file_reads_the_same_however_it_is_compressed(tmp_path, compress):
    path = tmp_path / "kdd"
    path.write_bytes(compress(gzip.decompress(FIXTURE.read_bytes())))
    assert load_kdd(path).equals(load_kdd(FIXTURE))
    assert load_records(path).equals(load_kdd(FIXTURE))


def test_a_compressed_csv_export_with_a_header_reads_as_the_plain_one(tmp_path):
    plain = tmp_path / "export.csv"
    load_kdd(FIXTURE).head(50).assign(label="normal").to_csv(plain, index=False)
    packed = tmp_path / "export.csv.xz"
    packed.write_bytes(lzma.compress(plain.read_bytes()))
    assert load_records(packed).equals(load_records(plain))
    assert len(load_records(packed)) == 50


def test_missing_file_and_feature():
    with pytest.raises(FileNotFoundError):
        load_kdd("/nonexistent/kdd.gz")
    with pytest.raises(KeyError):
        to_batch(load_kdd(FIXTURE), ["no_such_feature"])


def test_sampler_counts_and_determinism():
    data = _toy()
    b = create_outlier_batch(data, 20, 10, seed=3)
    assert len(b) == 20 and b.y.sum() == 2
    assert len(np.unique(b.X[b.y == 0])) == 18  # without replacement
    assert np.array_equal(b.X, create_outlier_batch(data, 20, 10, seed=3).X)
    big = create_outlier_batch(data, 200, 50, seed=0)  # more than available: replacement
    assert big.y.sum() == 100 and set(big.X[big.y == 1, 0]) <= set(range(50, 60))


def test_sampler_matches_legacy_global_seed_procedure():
    # Alibi Detect draws with np.random after np.random.seed(seed): normal, outlier, shuffle
    data = _toy()
    np.random.seed(7)
    normal = np.flatnonzero(data.y == 0)[np.random.choice(50, 18, replace=False)]
    outlier = np.flatnonzero(data.y == 1)[np.random.choice(10, 2, replace=False)]
    rows = np.r_[normal, outlier][np.random.choice(20, 20, replace=False)]
    assert np.array_equal(create_outlier_batch(data, 20, 10, seed=7).X[:, 0], data.X[rows, 0])
