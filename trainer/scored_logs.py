"""Labelled sensor logs scored a chunk at a time: what ``stream-od evaluate`` reports on.

A labelled capture can be tens of millions of connections (IoT-23's larger ones are), and
read whole into Python dicts it needs gigabytes per million before the first score.  Here the
records are read, selected, encoded and scored 8,192 at a time, through the worker's encoder,
and what is kept of each is what the report is computed from: its score (or that the schema
refused it), its label codes (:class:`~trainer.labels.LabelCodes`), its 0/1 columns for a
field it lacked and a value training never saw, and, for the plots, a uniform sample of at
most :data:`PLOT_ROWS` encoded rows.

A record's score does not depend on the others, except through traffic windows: a schema with
windows counts each host's earlier records, so its records are scored in event-time order, as
``read_logs`` orders them: all are read and sorted first, each as its JSON, in bounded memory
(:mod:`trainer.time_order`).  Without windows they are scored in the order read.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from stream_od.artifact import Artifact
from stream_od.records import RecordDecoder
from trainer.labels import LabelCodes, Labels
from trainer.readers import stream_logs
from trainer.sample import CHUNK, RowSample, chunks
from trainer.score import in_time_order

#: rows plotted at most (a uniform sample beyond): a scatter of millions of points takes
#: minutes to draw and shows no more
PLOT_ROWS = 100_000
#: records the columns and labels are looked for in before anything is scored
#: (:func:`trainer.report.check_columns` reads as many)
HEAD = 1000


@dataclass(frozen=True)
class ScoredLogs:
    """Per selected record, in the order read: its score (NaN where the schema refused it),
    its labels and its indicator columns (``flag_names``)."""

    scores: np.ndarray
    refused: np.ndarray  # bool
    labels: Labels
    flags: np.ndarray  # bool, one column per name in flag_names
    flag_names: tuple[tuple[str, str], ...]  # ("missing" | "unseen", field)
    skipped: int  # records of another kind (the schema's [select])
    plot_positions: np.ndarray  # the sampled records' positions, increasing
    plot_rows: np.ndarray  # their encoded rows

    def shares(self, kind: str, rows: np.ndarray) -> dict[str, float]:
        """The share of ``rows`` (a mask) with each ``kind`` indicator set, as
        :func:`stream_od.features.unseen_shares` gives it of their matrix (``{}`` for none)."""
        n = int(rows.sum())
        if not n:
            return {}
        return {
            name: int(self.flags[rows, k].sum()) / n
            for k, (what, name) in enumerate(self.flag_names)
            if what == kind
        }


def score_logs(
    art: Artifact,
    paths: Sequence[str | os.PathLike],
    *,
    label_field: str | None = None,
    check: Callable[[list[dict], LabelCodes], None] = lambda head, codes: None,
    progress: Callable[[int], None] = lambda read: None,
    plot_rows: int | None = None,
) -> ScoredLogs:
    """Score the records of ``paths`` that the artifact's schema is for (see the module doc).
    ``check`` is called once with the first :data:`HEAD` of them and their labels, before
    anything is scored; ``progress`` after each chunk with the records read so far;
    ``plot_rows`` (default :data:`PLOT_ROWS`) bounds the rows kept for plotting."""
    schema = art.schema
    logs = stream_logs(paths, event_types=None)  # the schema selects, as the worker
    codes = LabelCodes(schema, label_field=label_field)
    read = skipped = 0

    def selected_chunks() -> Iterator[list[dict]]:
        from trainer.site import selected

        nonlocal read, skipped
        for chunk in chunks(logs.records(), CHUNK):
            read += len(chunk)
            kept, n = selected(chunk, schema)
            skipped += n
            codes.add(kept)
            progress(read)
            yield kept

    stream = selected_chunks()
    head = list(_until(stream, HEAD))
    check([r for c in head for r in c][:HEAD], codes)
    read_order = itertools.chain(head, stream)
    rest = (
        _numbered(read_order)
        if schema.windows is None
        else _in_time_order(read_order, logs.fmt, schema.label_fields)
    )
    names = tuple(
        [("missing", f) for f in schema.missing_columns]
        + [("unseen", f) for f in schema.unseen_columns]
    )
    flag_columns = [*schema.missing_columns.values(), *schema.unseen_columns.values()]
    decoder = RecordDecoder(schema)  # one, for the windows' state across chunks
    plot = RowSample(PLOT_ROWS if plot_rows is None else plot_rows)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for positions, records in rest:
        enc = decoder.encode_records(records)
        ok = np.ones(len(records), dtype=bool)
        ok[list(enc.rejected)] = False
        scores = np.full(len(records), np.nan)
        if ok.any():
            scores[ok] = art.score(enc.X[ok])
        plot.offer(enc.X[ok], positions[ok])
        parts.append((positions, scores, ~ok, enc.X[:, flag_columns] > 0.5))
    n = codes.n
    scores, refused = np.full(n, np.nan), np.zeros(n, dtype=bool)
    flags = np.zeros((n, len(flag_columns)), dtype=bool)
    for positions, s, r, f in parts:
        scores[positions], refused[positions], flags[positions] = s, r, f
    plot_positions, rows = plot.result()
    return ScoredLogs(
        scores=scores,
        refused=refused,
        labels=codes.labels(),
        flags=flags,
        flag_names=names,
        skipped=skipped,
        plot_positions=plot_positions,
        plot_rows=rows,
    )


def _until(stream: Iterator[list[dict]], n: int) -> Iterator[list[dict]]:
    """Chunks from ``stream`` until they hold ``n`` records (or it ends)."""
    got = 0
    while got < n:
        chunk = next(stream, None)
        if chunk is None:
            return
        got += len(chunk)
        yield chunk


def _numbered(selected: Iterable[list[dict]]) -> Iterator[tuple[np.ndarray, list[dict]]]:
    start = 0
    for chunk in selected:
        yield np.arange(start, start + len(chunk)), chunk
        start += len(chunk)


def _in_time_order(
    selected: Iterable[list[dict]], fmt: str, label_fields: Sequence[str]
) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """The records in ``read_logs``' order (by event time, ties as read, a record without a
    time last), in chunks, each with the positions it was read at.  Every record is read and
    sorted first, as its JSON without its label fields (:mod:`trainer.time_order`)."""
    keyed = in_time_order((r for chunk in selected for r in chunk), fmt, label_fields)
    for part in chunks(keyed, CHUNK):
        yield (
            np.fromiter((i for _, i, _ in part), dtype=np.int64, count=len(part)),
            [orjson.loads(value) for *_, value in part],
        )
