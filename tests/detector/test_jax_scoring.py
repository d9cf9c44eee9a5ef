"""Keras on JAX, a GPU scoring path (``KERAS_BACKEND=jax``), run on JAX's CPU: the compiled
pass scores as the numpy pass does whatever the micro-batch size, and compiles one program per
padded size, not one per size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from stream_od.artifact import Artifact

pytest.importorskip("jax")  # the test extra installs it, so CI runs this test

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    import jax
    import numpy as np
    from stream_od.artifact import Artifact

    compiles = []

    class Count(logging.Handler):
        def emit(self, record):
            if "Compiling" in record.getMessage():
                compiles.append(record.getMessage())

    logging.getLogger("jax").addHandler(Count())
    logging.getLogger("jax").setLevel(logging.DEBUG)
    jax.config.update("jax_log_compiles", True)
    art = Artifact.load(sys.argv[1])
    X = np.load(sys.argv[2])
    numpy_scores = art.score(X)
    art.detector.use_keras()
    sizes = [1, 3, 8, 9, 100, 101, 127, 1000]
    worst, passes = 0.0, []
    for _ in range(2):
        before = len(compiles)
        for n in sizes:
            got, want = art.score(X[:n]), numpy_scores[:n]
            worst = max(worst, float(np.max(np.abs(got - want) / np.maximum(1, np.abs(want)))))
        passes.append(len(compiles) - before)
    print(json.dumps({"backend": art.detector.scoring_backend, "worst": worst,
                      "compiles": passes}))
    """
)


def test_the_jax_pass_scores_as_numpy_at_every_batch_size(tmp_path):
    from stream_od.detector import VAEGMM
    from stream_od.features import Standardizer
    from stream_od.schema import FeatureSchema

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 5))
    det = VAEGMM(epochs=1, batch_size=256, seed=0).fit(X).infer_threshold(X, 95)
    schema = FeatureSchema.numeric([f"f{i}" for i in range(5)])
    art = Artifact(detector=det, standardizer=Standardizer().fit(X), schema=schema)
    path = art.save(tmp_path / "art")
    np.save(tmp_path / "X.npy", X * 1.5)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "X.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "keras"
    assert result["worst"] < 1e-9  # float64 on both paths
    # eight sizes pad to four (8, 16, 128, 1024): one program each the first time round, and
    # none the second (unpadded, each size compiled its own)
    assert result["compiles"] == [4, 0]
