"""Ed25519 signatures: workers hold only the public key; HMAC stays as the weaker option."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_od.cli import main
from stream_od.manifest import MANIFEST
from stream_od.registry import Refused, keys, signing
from stream_od.registry.signing import Trust
from stream_od.registry.verify import load_verified
from tests.registry.conftest import KEY


def test_an_ed25519_signed_artifact_verifies_with_only_the_public_key(
    make_artifact, private_key, trust
):
    path = make_artifact()
    signing.sign_ed25519(path, private_key)
    assert trust.hmac_key is None and trust.scheme == "ed25519"
    assert load_verified(path, trust).version == "v0-1"


@pytest.mark.parametrize("signed_with", ["nothing", "hmac"])
def test_unsigned_or_hmac_only_is_refused_under_a_public_key(make_artifact, trust, signed_with):
    path = make_artifact()
    if signed_with == "hmac":
        signing.sign(path, KEY)
    with pytest.raises(Refused, match="no manifest.ed25519") as exc:
        load_verified(path, trust)
    assert exc.value.reason == "unsigned"
    if signed_with == "hmac":
        assert "only an HMAC signature" in str(exc.value)


@pytest.mark.parametrize("case", ["another_private_key", "tampered_manifest"])
def test_another_private_key_or_a_tampered_manifest_is_a_bad_signature(
    make_artifact, private_key, trust, case
):
    """A signature by a key a worker made up, or the publisher's signature over a manifest
    since rewritten to vouch for another detector (its files swapped in, their sums updated,
    so every sum holds): neither is served, and the reason says the signature is bad."""
    path = make_artifact()
    if case == "another_private_key":
        signing.sign_ed25519(path, Ed25519PrivateKey.generate())
    else:
        signing.sign_ed25519(path, private_key)
        other = make_artifact(seed=1)
        manifest = json.loads((path / MANIFEST).read_text())
        for name in ("detector.json", "detector.npz"):
            content = (other / name).read_bytes()
            assert content != (path / name).read_bytes()
            (path / name).write_bytes(content)
            manifest["files"][name] = hashlib.sha256(content).hexdigest()
        (path / MANIFEST).write_text(json.dumps(manifest))
        # Only the signature stands in the way: checked by its sums alone, it loads.
        assert load_verified(path, None).version == "v0-1"
    with pytest.raises(Refused) as exc:
        load_verified(path, trust)
    assert exc.value.reason == "bad_signature"


def test_a_tampered_artifact_is_refused(make_artifact, private_key, trust):
    path = make_artifact()
    signing.sign_ed25519(path, private_key)
    manifest = path / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"version": "v0-1"', '"version": "v0-X"'))
    with pytest.raises(Refused) as exc:
        load_verified(path, trust)
    assert exc.value.reason == "bad_signature"
    # A file changed after signing: the signature holds, its sha256 does not.
    path = make_artifact()
    signing.sign_ed25519(path, private_key)
    npz = bytearray((path / "detector.npz").read_bytes())
    npz[len(npz) // 2] ^= 1
    (path / "detector.npz").write_bytes(bytes(npz))
    with pytest.raises(Refused, match="sha256 mismatch for detector.npz") as exc:
        load_verified(path, trust)
    assert exc.value.reason == "integrity"
    # Garbage where the signature should be.
    path = make_artifact()
    (path / signing.ED25519_SIGNATURE).write_text("not hex\n")
    with pytest.raises(Refused, match="not a hex signature") as exc:
        load_verified(path, trust)
    assert exc.value.reason == "bad_signature"


def test_hmac_still_works_and_both_signatures_can_travel_together(
    make_artifact, private_key, trust
):
    path = make_artifact()
    signing.sign_ed25519(path, private_key)
    signing.sign(path, KEY)
    assert load_verified(path, trust).version == "v0-1"
    assert load_verified(path, KEY).version == "v0-1"  # bytes: the older HMAC API
    assert load_verified(path, Trust(hmac_key=KEY)).version == "v0-1"
    with pytest.raises(ValueError, match="not both"):
        Trust(public_key=private_key.public_key(), hmac_key=KEY)


def test_keygen_writes_a_pair_private_0600_and_never_overwrites(tmp_path, capsys, make_artifact):
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out)]) == 0
    private, public = out / keys.PRIVATE_KEY_FILE, out / keys.PUBLIC_KEY_FILE
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert "PRIVATE KEY" in private.read_text() and "PUBLIC KEY" in public.read_text()
    assert f"STREAM_OD_MODEL_PUBLIC_KEY_FILE={public}" in capsys.readouterr().out
    before = private.read_bytes()
    assert main(["keygen", "--out", str(out)]) == 1
    assert "never overwrites" in capsys.readouterr().err and private.read_bytes() == before
    # The pair works: sign with the private file, verify with the public file.
    path = make_artifact()
    signing.sign_ed25519(path, keys.parse_private_key(private.read_bytes(), "test"))
    pub = keys.parse_public_key(public.read_bytes(), "test")
    assert load_verified(path, Trust(public_key=pub)).version == "v0-1"


def test_key_forms_pem_raw_and_hex(private_key):
    pub = private_key.public_key()
    raw = pub.public_bytes_raw()
    for form in (
        keys.public_pem(pub).encode(),
        raw,
        raw.hex().encode(),
        raw.hex().encode() + b"\n",
    ):
        assert keys.parse_public_key(form, "X").public_bytes_raw() == raw
    seed = private_key.private_bytes_raw()
    for form in (seed, seed.hex().encode() + b"\n"):
        assert keys.parse_private_key(form, "X").private_bytes_raw() == seed
    for bad in (b"", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", b"x" * 31):
        with pytest.raises(ValueError, match="STREAM_OD_MODEL_PUBLIC_KEY_FILE: not an Ed25519"):
            keys.parse_public_key(bad, "STREAM_OD_MODEL_PUBLIC_KEY_FILE")
    with pytest.raises(ValueError, match="not an unencrypted Ed25519 private key"):
        keys.parse_private_key(keys.public_pem(pub).encode(), "X")


def test_keys_from_the_environment_and_from_files(tmp_path, private_key):
    seed = private_key.private_bytes_raw()
    key_file = tmp_path / "private"
    key_file.write_bytes(seed)
    env = {"STREAM_OD_MODEL_PRIVATE_KEY_FILE": str(key_file)}
    assert keys.private_key_from_env(env).private_bytes_raw() == seed
    assert keys.private_key_from_env({"STREAM_OD_MODEL_PRIVATE_KEY": seed.hex()}) is not None
    assert keys.private_key_from_env({}) is None
    with pytest.raises(ValueError, match="both"):
        keys.private_key_from_env({**env, "STREAM_OD_MODEL_PRIVATE_KEY": seed.hex()})
    with pytest.raises(ValueError, match="PRIVATE_KEY_FILE=.*cannot read"):
        keys.private_key_from_env({"STREAM_OD_MODEL_PRIVATE_KEY_FILE": str(tmp_path / "nope")})
    # HMAC from a mounted secret: the trailing newline is not part of the key.
    secret = tmp_path / "hmac"
    secret.write_text(KEY.decode() + "\n")
    assert keys.key_from_env({"STREAM_OD_MODEL_SIGNING_KEY_FILE": str(secret)}) == KEY
    assert keys.key_from_env({"STREAM_OD_MODEL_SIGNING_KEY": KEY.decode()}) == KEY
    secret.write_text("short\n")
    with pytest.raises(ValueError, match="at least 16"):
        keys.key_from_env({"STREAM_OD_MODEL_SIGNING_KEY_FILE": str(secret)})
    big = tmp_path / "big"
    big.write_bytes(b"x" * (keys.MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(ValueError, match="not a key file"):
        keys.private_key_from_env({"STREAM_OD_MODEL_PRIVATE_KEY_FILE": str(big)})


def test_publish_signs_with_the_private_key_from_a_file_or_the_environment(
    make_artifact, tmp_path, monkeypatch, capsys
):
    from stream_od.registry.directory import DirectoryRegistry
    from trainer.publish import publish

    private, public = keys.generate(tmp_path / "keys")
    trust = Trust(public_key=keys.parse_public_key(public.read_bytes(), "test"))
    src = make_artifact(1)
    (src / "report.json").write_text("{}")  # not in the manifest: not published
    reg = tmp_path / "reg"
    assert (
        main(
            [
                "publish",
                "--artifact",
                str(src),
                "--registry-dir",
                str(reg),
                "--private-key-file",
                str(private),
            ]
        )
        == 0
    )
    assert '"signatures": ["ed25519"]' in capsys.readouterr().out
    published = DirectoryRegistry(reg).path_of("v1-1")
    assert sorted(p.name for p in published.iterdir()) == [
        "artifact.json",
        "detector.json",
        "detector.npz",
        "manifest.ed25519",
        "manifest.json",
        "standardizer.json",
    ]
    assert load_verified(published, trust).version == "v1-1"
    # `train --publish-*` calls publish() with the HMAC key only: the private key comes from
    # STREAM_OD_MODEL_PRIVATE_KEY_FILE, and both signatures travel.
    monkeypatch.setenv("STREAM_OD_MODEL_PRIVATE_KEY_FILE", str(private))
    out = publish(make_artifact(2), registry_dir=reg, key=KEY)
    assert out["signatures"] == ["ed25519", "hmac-sha256"] and out["signed"]
    path = DirectoryRegistry(reg).path_of(out["version"])
    assert load_verified(path, trust).version == load_verified(path, KEY).version
    # Without any key: unsigned, with a warning that says what workers will do.
    monkeypatch.delenv("STREAM_OD_MODEL_PRIVATE_KEY_FILE")
    assert main(["publish", "--artifact", str(make_artifact(3)), "--registry-dir", str(reg)]) == 0
    assert "publishing unsigned" in capsys.readouterr().err
    # A bad key file stops publish with the setting named.
    assert (
        main(
            [
                "publish",
                "--artifact",
                str(make_artifact(4)),
                "--registry-dir",
                str(reg),
                "--private-key-file",
                str(public),
            ]
        )
        == 1
    )
    assert "--private-key-file: not an unencrypted Ed25519 private key" in capsys.readouterr().err
