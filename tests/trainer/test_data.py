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


KDD_LINE = "0,tcp,http,SF,181,5450" + ",0" * 35 + ",normal."


@pytest.mark.parametrize(
    "text,why",
    [
        ("hello world\nfoo\n", "line 1 has 1 comma-separated fields, not 42"),
        (f"{KDD_LINE}\n1,2,3\n", "line 2 has 3 comma-separated fields, not 42"),
        (f"{KDD_LINE},9\n{KDD_LINE},9\n", "line 1 has 43 comma-separated fields, not 42"),
        (f"{KDD_LINE}\n\n{KDD_LINE.replace('181', 'abc')}\n", "line 3: src_bytes is 'abc', not"),
    ],
)
def test_a_file_that_is_no_kdd_data_names_its_first_bad_line(tmp_path, text, why):
    """A file that is neither a sensor log nor KDD CSV falls to the KDD reader: the error says
    which line is not a KDD record, and what a data file may be."""
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="not a KDD Cup '99 file") as err:
        load_records(path)
    assert str(err.value).startswith(f"{path}: not a KDD Cup '99 file ({why}")
    assert "Zeek TSV or JSON, Suricata EVE" in str(err.value)


def test_an_empty_data_file_says_it_is_empty(tmp_path):
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.log: no records \(the file is empty\)"):
        load_records(path)


def test_blank_lines_in_a_kdd_file_are_skipped(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text(f"{KDD_LINE}\n\n{KDD_LINE}\n")
    assert len(load_records(path)) == 2


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
