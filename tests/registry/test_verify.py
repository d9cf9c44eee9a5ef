import pytest

from stream_od.config import load_settings
from stream_od.errors import ConfigError
from stream_od.registry import Refused, signing
from stream_od.registry.verify import load_verified
from tests.registry.conftest import KEY


def flip_one_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_signed_artifact_loads_under_its_key(make_artifact):
    path = make_artifact()
    signing.sign(path, KEY)
    assert load_verified(path, KEY).version == "v0-1"


def test_no_key_configured_checks_sums_only(make_artifact):
    assert load_verified(make_artifact(), None).version == "v0-1"


def test_unsigned_under_a_key_is_refused(make_artifact):
    with pytest.raises(Refused, match="no manifest.sig") as exc:
        load_verified(make_artifact(), KEY)
    assert exc.value.reason == "unsigned"


def test_wrong_key_or_edited_manifest_is_a_bad_signature(make_artifact):
    path = make_artifact()
    signing.sign(path, b"another-key-another-key")
    with pytest.raises(Refused) as exc:
        load_verified(path, KEY)
    assert exc.value.reason == "bad_signature"
    signing.sign(path, KEY)
    manifest = path / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"version": "v0-1"', '"version": "v0-X"'))
    with pytest.raises(Refused) as exc:
        load_verified(path, KEY)
    assert exc.value.reason == "bad_signature"


@pytest.mark.parametrize("name", ["detector.npz", "artifact.json", "standardizer.json"])
@pytest.mark.parametrize("key", [None, KEY])
def test_one_changed_byte_is_an_integrity_refusal(make_artifact, name, key):
    path = make_artifact()
    signing.sign(path, KEY)
    flip_one_byte(path / name)
    with pytest.raises(Refused, match=f"sha256 mismatch for {name}") as exc:
        load_verified(path, key)
    assert exc.value.reason == "integrity"


def test_key_rules(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="at least 16"):
        signing.check_key(b"short")
    assert signing.key_from_env({}) is None
    assert signing.key_from_env({signing.SIGNING_KEY_ENV: KEY.decode()}) == KEY
    # The worker setting: environment only, and never shown.
    monkeypatch.setenv("STREAM_OD_MODEL_SIGNING_KEY", KEY.decode())
    settings = load_settings()
    assert settings.model_signing_key.get_secret_value() == KEY.decode()
    assert KEY.decode() not in repr(settings) and KEY.decode() not in str(settings.model_dump())
    monkeypatch.delenv("STREAM_OD_MODEL_SIGNING_KEY")
    cfg = tmp_path / "worker.json"
    cfg.write_text(f'{{"model_signing_key": "{KEY.decode()}"}}')
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(cfg))
    with pytest.raises(ConfigError, match="secret"):
        load_settings()


def test_registry_settings_are_checked():
    with pytest.raises(ConfigError, match="model_registry_dir"):
        load_settings(model_source="directory")
    with pytest.raises(ConfigError, match="model_topic"):
        load_settings(model_source="topic", model_topic="stream-od.connections")
    assert load_settings().model_source == "path"
