"""The reference protocol through feature schemas gives the reference protocol's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from trainer.data import load_records, reference_protocol, to_batch
from trainer.fit import TrainConfig, train

FIXTURE = str(Path(__file__).parents[1] / "fixtures" / "kdd_sample.csv.gz")


def test_kdd99_through_the_schema_is_the_protocol_as_it_was():
    """Same rows, same matrix, same threshold: the schema changed nothing for kdd99."""
    art = train(TrainConfig(data=FIXTURE, detector="mahalanobis", n_train=3000), progress=False)
    assert art.schema.name == "kdd99"
    data = to_batch(load_records(FIXTURE))  # the 18 features, as before schemas were data
    proto = reference_protocol(data, n_train=3000)
    std = Standardizer().fit(proto.train.X)
    det = Mahalanobis().fit(std.transform(proto.train.X))
    det.infer_threshold(std.transform(proto.threshold.X), 95.0)
    assert art.threshold == det.threshold_
    np.testing.assert_array_equal(art.score(proto.test.X), det.score(std.transform(proto.test.X)))


def test_kdd99_full_one_hot_encodes_the_three_categoricals():
    art = train(
        TrainConfig(data=FIXTURE, detector="mahalanobis", n_train=3000, schema="kdd99-full"),
        progress=False,
    )
    names = art.feature_names
    assert art.schema.name == "kdd99-full" and "protocol_type=tcp" in names
    assert "service=<other>" in names and "src_bytes" in names and len(names) > 41
    assert art.metrics["test_batch"]["auroc"] > 0.9
    # the worker's baseline of unseen values: the threshold batch's normal rows, per field
    shares = art.metrics["unseen_category_share"]
    assert set(shares) == {"protocol_type", "service", "flag"}
    assert all(0.0 <= v < 0.5 for v in shares.values())


def test_the_training_bar_in_a_log_is_not_redrawn_every_epoch():
    """In a log (a Kubernetes Job, CI) the bar may redraw every 10 s: a redraw is a line there.
    Changing the epoch and the loss must not force one; a Zeek day's 177 epochs did."""
    import io
    import re

    from trainer.fit import _progress_callbacks

    log = io.StringIO()  # not a terminal
    (bar,) = _progress_callbacks(epochs=177, steps=17, after="mixture next", file=log)
    bar.on_train_begin()
    for epoch in range(177):
        bar.on_epoch_begin(epoch)
        for step in range(17):
            bar.on_train_batch_end(step, {"loss": 100.0 - epoch})
    bar.on_train_end()
    draws = [d for d in re.split(r"[\r\n]", log.getvalue()) if d.strip()]
    assert len(draws) <= 3, len(draws)  # the first draw, the last, and 'after' (in < 10 s)
    assert "epoch 177/177" in draws[-2] and "loss=-76.0000" in draws[-2]
    assert draws[-1].strip() == "mixture next"
