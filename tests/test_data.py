"""The KDD sample shipped in the package: present, the file's own lines, every label, and what
the demo falls back to when the full file is absent."""

from __future__ import annotations

import gzip
from collections import Counter
from importlib import resources

from stream_od import demo
from trainer.data import load_records


def sample_path() -> str:
    return str(resources.files("stream_od.data").joinpath(demo.SAMPLE_DATA))


def test_the_sample_is_kdd_with_every_attack_type():
    df = load_records(sample_path())
    assert len(df) == 50_242
    labels = Counter(df["attack"])
    assert labels["normal"] == 30_000 and len(labels) == 23  # normal + 22 attack types


def test_the_sample_is_what_its_script_makes_of_the_full_file(kdd_train_path):
    """Provenance: sampling the 10 % file again gives the shipped sample byte for byte."""
    from trainer.kdd_sample import sample_lines

    with gzip.open(kdd_train_path, "rb") as fh:
        source = [line for line in fh.read().splitlines() if line.strip()]
    with gzip.open(sample_path(), "rb") as fh:
        shipped = fh.read().splitlines()
    assert sample_lines(source) == shipped


def test_the_demo_falls_back_to_the_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here
    assert demo.default_kdd_data() == sample_path()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kddcup.data_10_percent.gz").write_bytes(b"")
    assert demo.default_kdd_data() == demo.DEFAULT_DATA
