import pytest

from stream_od.schema import DEFAULT_FEATURES, KDD_COLUMNS, FeatureSchema


def test_columns_and_defaults():
    assert len(KDD_COLUMNS) == 41 and len(DEFAULT_FEATURES) == 18
    assert set(DEFAULT_FEATURES) <= set(KDD_COLUMNS)
    assert DEFAULT_FEATURES[0] == "srv_count" and DEFAULT_FEATURES[-1] == "dst_host_srv_rerror_rate"


def test_roundtrip_and_validation():
    s = FeatureSchema(names=("a", "b"))
    assert FeatureSchema.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        FeatureSchema(names=("a", "a"))
    with pytest.raises(ValueError):
        FeatureSchema.from_dict({"names": "a"})
