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


def _training_log(monkeypatch, seconds_per_epoch: float) -> list[str]:
    """The lines a 177-epoch training writes to a log (not a terminal) when each epoch takes
    ``seconds_per_epoch`` on tqdm's clock: a fake one, so the count does not depend on how
    fast this machine runs the loop.  (tqdm reads ``tqdm.std.time`` when a bar is made.)"""
    import io
    import re

    import tqdm.std

    from trainer.fit import _progress_callbacks

    clock = [0.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: clock[0])
    # tqdm's monitor thread reads the real clock and may force a redraw: keep it off
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    log = io.StringIO()  # not a terminal
    (bar,) = _progress_callbacks(epochs=177, steps=17, after="mixture next", file=log)
    bar.on_train_begin()
    for epoch in range(177):
        clock[0] += seconds_per_epoch
        bar.on_epoch_begin(epoch)
        for step in range(17):
            bar.on_train_batch_end(step, {"loss": 100.0 - epoch})
    bar.on_train_end()
    return [d for d in re.split(r"[\r\n]", log.getvalue()) if d.strip()]


def test_the_training_bar_in_a_log_is_not_redrawn_every_epoch(monkeypatch):
    """In a log (a Kubernetes Job, CI) the bar may redraw every 10 s: a redraw is a line there.
    Changing the epoch and the loss must not force one; a Zeek day's 177 epochs did."""
    import re

    # no time passes: only the first draw, the last, and 'after'; none for the 177 epochs
    draws = _training_log(monkeypatch, seconds_per_epoch=0.0)
    assert len(draws) == 3, draws
    assert "epoch 177/177" in draws[-2] and "loss=-76.0000" in draws[-2]
    assert draws[-1].strip() == "mixture next"
    # 1 s an epoch: a line every 10 s, so every 10th epoch (a terminal's 0.1 s would be 177)
    draws = _training_log(monkeypatch, seconds_per_epoch=1.0)
    assert 177 // 10 <= len(draws) - 3 <= 177 // 10 + 1, draws
    # 11 s an epoch: each epoch is past the 10 s, so each gets its line, showing that epoch
    draws = _training_log(monkeypatch, seconds_per_epoch=11.0)
    shown = [int(m[1]) for d in draws[1:-2] if (m := re.match(r"epoch (\d+)/177", d))]
    assert shown == list(range(1, 178)) and len(draws) == 180, draws
