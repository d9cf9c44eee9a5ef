"""Each file is read once and what is loaded is what was verified (issue 11: the directory
registry verified files, then re-opened them by path; 8 of 3,000 loads returned a file swapped
in between)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from stream_od.artifact import Artifact
from stream_od.registry import Refused, signing
from stream_od.registry.loading import read_artifact
from stream_od.registry.verify import load_verified

LOADS = 10_000


class Swapper(threading.Thread):
    """Replaces ``target`` with ``other`` and back, atomically, every ``pause_s`` (well inside
    the time one load takes, so loads and swaps interleave all the time)."""

    def __init__(self, target, genuine: bytes, other: bytes, pause_s: float = 1e-3):
        super().__init__(daemon=True)
        self.target, self.stop, self.swaps, self.pause_s = target, threading.Event(), 0, pause_s
        self.sources = []
        for i, data in enumerate((genuine, other)):
            src = target.parent.parent / f"swap-{i}"
            src.write_bytes(data)
            self.sources.append(src)

    def run(self) -> None:
        staging = self.target.with_name(".swap")
        while not self.stop.is_set():
            for src in self.sources:
                os.link(src, staging)
                os.replace(staging, self.target)
                self.swaps += 1
                time.sleep(self.pause_s)


def test_no_unverified_byte_is_loaded_under_a_concurrent_swapper(make_artifact, private_key, trust):
    path = make_artifact(1)
    signing.sign_ed25519(path, private_key)
    genuine = Artifact.load(path)
    # Another artifact's arrays: a valid npz, so only the sums can tell it apart.
    other = (make_artifact(2) / "detector.npz").read_bytes()
    swapper = Swapper(path / "detector.npz", (path / "detector.npz").read_bytes(), other)
    loaded = refused = wrong = 0
    swapper.start()
    try:
        for _ in range(LOADS):
            try:
                art = load_verified(path, trust)
            except Refused as exc:
                assert exc.reason == "integrity" and "detector.npz" in str(exc), exc
                refused += 1
                continue
            loaded += 1
            if not (
                np.array_equal(art.detector.mu_, genuine.detector.mu_)
                and np.array_equal(art.detector.cov_, genuine.detector.cov_)
            ):
                wrong += 1
    finally:
        swapper.stop.set()
        swapper.join()
    print(
        f"{LOADS} loads: {loaded} genuine, {refused} refused (integrity), {wrong} with "
        f"swapped bytes; {swapper.swaps} swaps"
    )
    assert wrong == 0
    assert loaded + refused == LOADS
    assert loaded > 0 and refused > 0, "the swapper never raced a load: the test proves nothing"


def test_from_files_parses_the_bytes_given_not_the_registry(make_artifact):
    path = make_artifact(1)
    files = read_artifact(path)
    (path / "detector.npz").write_bytes((make_artifact(2) / "detector.npz").read_bytes())
    art = Artifact.from_files(files, path.name)
    assert np.array_equal(art.detector.mu_, Artifact.load(make_artifact(1)).detector.mu_)


def test_only_the_manifest_its_files_and_signatures_are_read(make_artifact, private_key):
    path = make_artifact()
    signing.sign_ed25519(path, private_key)
    (path / "report.json").write_text("{}")
    (path / "plots").mkdir()
    files = read_artifact(path)
    assert sorted(files) == [
        "artifact.json",
        "detector.json",
        "detector.npz",
        "manifest.ed25519",
        "manifest.json",
        "standardizer.json",
    ]


def test_links_fifos_and_oversized_artifacts_are_refused_before_reading(make_artifact, tmp_path):
    path = make_artifact()
    real = path / "detector.npz"
    os.replace(real, tmp_path / "elsewhere.npz")
    os.symlink(tmp_path / "elsewhere.npz", real)
    with pytest.raises(Refused, match="links are refused") as exc:
        read_artifact(path)
    assert exc.value.reason == "malformed"
    real.unlink()
    os.mkfifo(real)  # opening it for reading would block without O_NONBLOCK
    with pytest.raises(Refused, match="not a regular file"):
        read_artifact(path)
    real.unlink()
    os.replace(tmp_path / "elsewhere.npz", real)
    with pytest.raises(Refused, match="over the 2,048-byte limit"):
        read_artifact(path, max_bytes=2048)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Refused, match="manifest.json is missing") as exc:
        read_artifact(empty)
    assert exc.value.reason == "integrity"


def test_bad_content_is_refused_naming_the_artifact_not_the_private_copy(make_artifact):
    import hashlib
    import json

    path = make_artifact()
    (path / "detector.json").write_text('{"params": {"nonsense": 1}, "state": {}}')
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["detector.json"] = hashlib.sha256(
        (path / "detector.json").read_bytes()
    ).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Refused) as exc:
        load_verified(path, None)
    assert exc.value.reason == "malformed"
    assert str(exc.value).startswith(f"{path.name}: ") and "nonsense" in str(exc.value)
