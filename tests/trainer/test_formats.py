"""Training input in other formats: a CSV with a header, and Parquet, give the same model."""

import pathlib

import pytest

from trainer.data import load_kdd, load_records
from trainer.fit import TrainConfig, train

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz"


def _export(tmp_path, kind: str) -> pathlib.Path:
    df = load_kdd(FIXTURE)
    df = df.drop(columns=["target"]).rename(columns={"attack": "label"})
    df["label"] = df["label"] + "."  # as in the KDD files
    df["sensor"] = "tap-1"  # extra columns are allowed
    if kind == "csv":
        path = tmp_path / "export.csv"
        df.to_csv(path, index=False)
    else:
        path = tmp_path / "export.parquet"
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_csv_with_header_and_parquet_train_the_same_model_as_the_kdd_file(tmp_path, kind):
    path = _export(tmp_path, kind)
    reference = load_kdd(FIXTURE)
    loaded = load_records(path)
    assert (loaded["target"].to_numpy() == reference["target"].to_numpy()).all()
    a = train(TrainConfig(data=str(FIXTURE), detector="mahalanobis", n_train=3000), progress=False)
    b = train(TrainConfig(data=str(path), detector="mahalanobis", n_train=3000), progress=False)
    assert a.threshold == b.threshold
    assert a.metrics["test_batch"] == b.metrics["test_batch"]


def test_a_csv_without_labels_is_refused(tmp_path):
    path = tmp_path / "nolabel.csv"
    path.write_text("duration,label_free\n0,1\n")
    # a header without 'label' is not recognised as an export: parsed as KDD, which fails
    with pytest.raises(ValueError):
        load_records(path)
    parquet = tmp_path / "x.parquet"
    load_kdd(FIXTURE).drop(columns=["attack", "target"]).to_parquet(parquet)
    with pytest.raises(ValueError, match="'label' column"):
        load_records(parquet)
