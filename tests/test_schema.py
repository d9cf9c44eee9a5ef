"""Feature schemas as data: built-ins, TOML files, validation, and the artifact round trip."""

from __future__ import annotations

import pytest

from stream_od.schema import (
    BUILTIN,
    DEFAULT_FEATURES,
    KDD_COLUMNS,
    FeatureSchema,
    Field,
    SchemaError,
    load_schema,
)


def test_columns_and_defaults():
    assert len(KDD_COLUMNS) == 41 and len(DEFAULT_FEATURES) == 18
    assert set(DEFAULT_FEATURES) <= set(KDD_COLUMNS)
    assert DEFAULT_FEATURES[0] == "srv_count" and DEFAULT_FEATURES[-1] == "dst_host_srv_rerror_rate"


def test_roundtrip_and_validation():
    s = FeatureSchema.numeric(("a", "b"))
    assert FeatureSchema.from_dict(s.to_dict()) == s
    with pytest.raises(SchemaError, match="duplicate field name 'a'"):
        FeatureSchema.numeric(("a", "a"))
    with pytest.raises(SchemaError):
        FeatureSchema.from_dict({"names": "a"})


def test_the_first_schema_format_still_loads():
    """Artifacts written before schemas were data hold ``{"names": [...]}``."""
    s = FeatureSchema.from_dict({"names": list(DEFAULT_FEATURES)})
    assert s.feature_names == DEFAULT_FEATURES
    assert all(f.kind == "numeric" and f.missing == "reject" for f in s.fields)


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_schemas_load_and_round_trip(name):
    s = load_schema(name)
    assert s.name == name
    assert FeatureSchema.from_dict(s.to_dict()) == s


def test_kdd99_is_the_reference_protocols_eighteen_features():
    s = load_schema("kdd99")
    assert s.fitted and s.feature_names == DEFAULT_FEATURES


def test_zeek_conn_scores_unset_fields_instead_of_refusing_them():
    s = load_schema("zeek-conn")
    assert s.time_field == "ts" and "label" in s.label_fields
    assert all(f.missing == "default" for f in s.fields)
    assert {f.kind for f in s.fields} == {"numeric", "categorical", "boolean"}
    assert "id.resp_p" in s.field_names  # Zeek's flat dotted name


def test_a_fitted_schema_names_one_hot_and_indicator_columns():
    s = FeatureSchema(
        fields=(
            Field(name="bytes", transform="log1p", missing="default", default=0, indicator=True),
            Field(name="proto", kind="categorical", vocabulary=("tcp", "udp")),
        )
    )
    assert s.feature_names == ("bytes", "bytes:missing", "proto=tcp", "proto=udp", "proto=<other>")
    assert len(s) == 5


def test_binary_columns_are_one_hot_boolean_and_indicator_columns():
    s = FeatureSchema(
        fields=(
            Field(name="bytes", missing="default", default=0, indicator=True),
            Field(name="proto", kind="categorical", vocabulary=("tcp",)),
            Field(name="dur"),
            Field(name="local", kind="boolean", missing="default", default=False, indicator=True),
            Field(name="syn", kind="boolean"),
        )
    )
    names = s.feature_names
    assert [names[i] for i in s.binary_columns] == [
        "bytes:missing",
        "proto=tcp",
        "proto=<other>",
        "local",
        "local:missing",
        "syn",
    ]


def test_columns_of_names_every_column_of_the_fields():
    s = FeatureSchema(
        fields=(
            Field(name="bytes", missing="default", default=0, indicator=True),
            Field(name="proto", kind="categorical", vocabulary=("tcp",)),
            Field(name="local", kind="boolean", missing="default", default=False, indicator=True),
        )
    )
    names = s.feature_names
    assert [names[i] for i in s.columns_of(["local", "proto"])] == [
        "proto=tcp",
        "proto=<other>",
        "local",
        "local:missing",
    ]
    assert s.columns_of([]) == ()
    with pytest.raises(SchemaError, match="no field"):
        s.columns_of(["nope"])


TOML_OK = """
name = "mine"
time_field = "ts"
label_fields = ["label"]

[[fields]]
name = "flow.bytes_toserver"
transform = "log1p"
missing = "default"
default = 0
indicator = true

[[fields]]
name = "proto"
kind = "categorical"
"""


def test_a_user_schema_from_a_toml_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(TOML_OK)
    s = load_schema(path)
    assert s.name == "mine" and s.field_names == ("flow.bytes_toserver", "proto")
    assert not s.fitted  # the vocabulary of proto comes from training records


@pytest.mark.parametrize(
    "fields, message",
    [
        ('name = "x"\nkind = "text"', "field 'x': unknown kind 'text'"),
        ('name = "x"\npath = "flow..bytes"', "field 'x': path 'flow..bytes' can never match"),
        ('name = "x"\npath = ".bytes"', "field 'x': path '.bytes' can never match"),
        ('name = "x"\ntransform = "sqrt"', "field 'x': unknown transform 'sqrt'"),
        ('name = "x"\nmissing = "default"', "field 'x': missing = \"default\" needs default"),
        ('name = "x"\nindicator = true', "field 'x': default and indicator need"),
        ('name = "x"\nclip = [5, 1]', "field 'x': clip low 5 is not below high 1"),
        ('name = "x"\nkind = "categorical"\ntransform = "log1p"', "field 'x': transform and clip"),
        ('name = "x"\nweight = 2', "field 'x': unknown key"),
        ('name = "x"\n\n[[fields]]\nname = "x"', "duplicate field name 'x'"),
        ('name = "label"', "'label'] is a label field"),
    ],
)
def test_a_bad_schema_file_names_the_field(tmp_path, fields, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'label_fields = ["label"]\n\n[[fields]]\n{fields}\n')
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    assert message in str(info.value)


def test_a_windows_table_without_its_rules_names_what_is_missing_once(tmp_path):
    """A [windows] table in a schema that extends a windowed one replaces the whole table:
    the error says which rule is missing and why, naming the file once."""
    path = tmp_path / "mine.toml"
    path.write_text('extends = "zeek-conn-windows"\nname = "mine"\n[windows]\ntime_s = 2.0\n')
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    message = str(info.value)
    assert message.startswith(f"{path}: windows.serror is missing: an error rule is")
    assert message.count(str(path)) == 1 and "replaces the whole table" in message


def test_unknown_schema_name_lists_the_builtins():
    with pytest.raises(SchemaError, match="zeek-conn"):
        load_schema("zeek")


def test_identity_table_round_trips_and_refuses_unknown_keys_and_labels():
    from stream_od.schema import load_schema
    from stream_od.schema.spec import FeatureSchema

    zeek = load_schema("zeek-conn")
    assert zeek.identity.source_ip == "id.orig_h" and zeek.identity.session_id == "uid"
    assert FeatureSchema.from_dict(zeek.to_dict()).identity == zeek.identity
    base = {"fields": [{"name": "bytes"}], "label_fields": ["label"]}
    with pytest.raises(SchemaError, match="src_addr"):
        FeatureSchema.from_dict({**base, "identity": {"src_addr": "a"}})
    with pytest.raises(SchemaError, match="label"):
        FeatureSchema.from_dict({**base, "identity": {"session_id": "label"}})


def test_select_table_round_trips_and_is_inherited():
    from stream_od.schema.select import SelectSpec
    from stream_od.schema.spec import FeatureSchema

    eve = load_schema("suricata-flow")
    assert eve.select == SelectSpec("event_type", ("flow",))
    assert load_schema("suricata-flow-windows").select == eve.select  # through `extends`
    zeek = load_schema("zeek-conn")
    assert zeek.select == SelectSpec("_path", ("conn",), tagged=True)
    assert load_schema("zeek-conn-windows").select == zeek.select
    assert load_schema("kdd99").select is None
    assert FeatureSchema.from_dict(eve.to_dict()).select == eve.select
    assert "select" not in load_schema("kdd99").to_dict()


def test_select_keeps_its_values_and_records_without_the_marker():
    from stream_od.schema.select import SelectSpec

    spec = SelectSpec("event_type", ("flow", "netflow"))
    assert [spec.keeps(v) for v in ("flow", "netflow", "dns", "stats", "", None, 7, {})] == [
        True,
        True,
        False,
        False,
        False,
        True,  # absent: not marked as another kind
        True,  # not text: no marker this schema knows
        True,
    ]


@pytest.mark.parametrize(
    "select, message",
    [
        ({"field": "event_type"}, "values"),
        ({"field": "event_type", "values": []}, "values"),
        ({"field": "event_type", "values": "flow"}, "values"),
        ({"field": "event_type", "values": ["flow", 3]}, "values"),
        ({"values": ["flow"]}, "field"),
        ({"field": "event_type", "values": ["flow"], "type": "x"}, r"unknown key\(s\) \['type'\]"),
        ("event_type", r"\[select\] is a table"),
        ({"field": "label", "values": ["benign"]}, "label field 'label'"),
        ({"field": "_path", "values": ["conn"], "tagged": "yes"}, "tagged is true or false"),
    ],
)
def test_a_bad_select_table_says_what_is_wrong(select, message):
    from stream_od.schema.spec import FeatureSchema

    base = {"fields": [{"name": "bytes"}], "label_fields": ["label"]}
    with pytest.raises(SchemaError, match=message):
        FeatureSchema.from_dict({**base, "select": select})
