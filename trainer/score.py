"""``stream-od score``: score a file offline, one JSON line per record.

For investigations ("what did the model make of these connections?") and for checking the
worker: records go through the worker's own decoder (:class:`stream_od.records.RecordDecoder`)
as the bytes the worker would receive (a sensor log's records as JSON lines, a KDD file's lines
as CSV), in batches of the worker's size, so a record gets the score the worker gives it.

Each output line: ``{"index": i, "score": s, "alert": true|false}`` for a scored record, or
``{"index": i, "dead_letter": reason, "detail": text}`` for one the worker would dead-letter,
``{"index": i, "skipped": "not_selected"}`` for one of another kind than the schema's
(``[select]``: an EVE dns event on a flow model), which the worker skips too;
``index`` is the record's position in the input (in event-time order for sensor logs).
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import BinaryIO

import numpy as np
import orjson

from stream_od.artifact import Artifact
from stream_od.records import NON_FINITE_SCORE, NON_FINITE_SCORE_DETAIL, RecordDecoder
from stream_od.schema import KDD_COLUMNS
from stream_od.schema.select import NOT_SELECTED
from trainer.readers import (
    UnparsedLine,
    detect_format,
    is_empty,
    is_sensor_log,
    open_binary,
    stream_logs,
    time_key,
)
from trainer.sample import chunks
from trainer.time_order import Keyed, in_key_order

BATCH = 1000  # the worker's default max_batch_records


def input_values(
    paths: Sequence[str | os.PathLike], schema_labels: Sequence[str] = ()
) -> list[bytes]:
    """:func:`iter_input_values`, all of them."""
    return list(iter_input_values(paths, schema_labels))


def iter_input_values(
    paths: Sequence[str | os.PathLike], schema_labels: Sequence[str] = ()
) -> Iterator[bytes]:
    """The wire bytes of every record in ``paths``: sensor logs (Zeek TSV or JSON, Suricata
    EVE) as JSON objects in event-time order (as :func:`~trainer.readers.read_logs` orders
    them), without their label fields; other files as their lines (KDD CSV).  A sensor
    record is turned into its bytes as it is read, so its dict is not kept (1,000,000 Zeek
    records: 681 MB at the peak, against 9.1 GB when every dict was; benchmarks/train_scale.py
    --score), and past :data:`trainer.time_order.RUN` records the sort goes through files."""
    if not is_sensor_log(paths):
        yield from (line for p in paths for line in _lines(p))
        return
    # a JSON line that is no object is kept, for the dead letter the worker gives it
    logs = stream_logs(paths, event_types=None, keep_unparsed=True)
    yield from (value for *_, value in in_time_order(logs.records(), logs.fmt, schema_labels))


def in_time_order(
    records: Iterable[dict], fmt: str, label_fields: Sequence[str]
) -> Generator[Keyed, None, None]:
    """``(time key, position, wire bytes)`` of each record, in :func:`~trainer.readers.read_logs`'
    order (by event time, ties as read, a record without a time last): what is kept of a log
    that must be put in time order before it is used, one record's bytes, sorted in bounded
    memory (:mod:`trainer.time_order`)."""
    drop = set(label_fields)
    return in_key_order((time_key(r, fmt), wire_value(r, drop)) for r in records)


def wire_values(records: Sequence[dict], label_fields: Sequence[str]) -> list[bytes]:
    """Each record as the sensor sends it: its JSON, without the ground-truth label fields
    (which only labelled captures have, and a model must never see)."""
    drop = set(label_fields)
    return [wire_value(r, drop) for r in records]


def wire_value(record: dict, drop: set[str]) -> bytes:
    if type(record) is UnparsedLine:  # as the sensor wrote it: the worker dead-letters it
        return record.raw
    return json_bytes({k: v for k, v in record.items() if k not in drop} if drop else record)


def json_bytes(obj: object) -> bytes:
    """``orjson.dumps(obj)`` copied into a bytes object of its own size: for values kept by
    the hundred thousand (the records of a replay or of a ``score`` run).  orjson writes into
    a buffer of a few kilobytes and then shrinks it, and the C allocator cannot give the
    rest of that block to the next one: each result kept held about 8 KB of memory for 400
    bytes of JSON (scoring 300,000 Zeek records peaked at 2.8 GB).  The copy costs about
    0.1 µs a record."""
    return bytes(memoryview(orjson.dumps(obj)))


def _lines(path: str | os.PathLike) -> list[bytes]:
    with open_binary(os.fspath(path)) as fh:
        return [line.rstrip(b"\r\n") for line in fh if line.strip()]


def score_values(art: Artifact, values: Iterable[bytes], *, batch: int = BATCH) -> Iterator[dict]:
    """One result dict per value, in order (see the module doc)."""
    decoder = RecordDecoder(art.schema)  # the worker's default max_record_bytes too
    for k, part in enumerate(chunks(values, batch)):
        start = k * batch
        out = decoder.decode(part)
        scores = art.score(out.X, check_finite=False) if len(out.X) else np.empty(0)
        finite = np.isfinite(scores)
        if not finite.all():  # as the worker: dead-lettered, not a stop
            out = out.reject_rows(finite, NON_FINITE_SCORE, NON_FINITE_SCORE_DETAIL)
            scores = scores[finite]
        results: dict[int, dict] = {}
        for row, s in zip(out.rows.tolist(), scores):
            results[row] = {
                "index": start + row,
                "score": float(s),
                "alert": bool(s > art.threshold),
            }
        for rej in out.rejected:
            results[rej.index] = {
                "index": start + rej.index,
                "dead_letter": rej.reason,
                "detail": rej.detail,
            }
        for i in out.skipped:
            results[i] = {"index": start + i, "skipped": NOT_SELECTED}
        for i in range(len(part)):
            yield results[i]


#: ``--out`` values that mean this process' standard output (the summary then goes to stderr)
STDOUT = ("-", "/dev/stdout")


def score_file(artifact_dir: str | os.PathLike, paths: Sequence[str], out_path: str) -> dict:
    """Score ``paths`` into ``out_path`` (JSON lines); returns counts.  The lines go to a
    file beside it, renamed to ``out_path`` once every record is scored: a log that turns out
    to be damaged halfway leaves no partial ``out_path`` (nor replaces an earlier one).
    Standard output (:data:`STDOUT`), and what :func:`written_in_place` says, are written as
    the records are scored."""
    if out_path not in STDOUT:
        check_out(out_path, paths, artifact_dir)
    art = Artifact.load(artifact_dir)
    if not reads_kdd_lines(art):  # a sensor model: not a log is an error, not dead letters
        check_logs(paths)
    values = iter_input_values(paths, art.schema.label_fields)
    counts = {"records": 0, "scored": 0, "alerts": 0, "dead_letters": 0, "skipped": 0}
    result = {"version": art.version, "out": out_path}
    if out_path in STDOUT:  # this process' own stream, never the /dev/stdout link
        _write_scores(sys.stdout.buffer, score_values(art, values), counts)
        sys.stdout.buffer.flush()
        return {**result, **counts}
    out = pathlib.Path(out_path)
    if written_in_place(out):
        with out.open("wb") as fh:
            _write_scores(fh, score_values(art, values), counts)
        return {**result, **counts}
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("wb") as fh:
            _write_scores(fh, score_values(art, values), counts)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return {**result, **counts}


def check_out(out_path: str, paths: Sequence[str], artifact_dir: str | os.PathLike) -> None:
    """Refuse an ``--out`` that would destroy what is being read: one of the ``--data`` files
    (by any name: a link to it, another path to it), or a place inside the artifact; and one
    whose directory does not exist, said before anything is scored."""
    out = pathlib.Path(out_path)
    if out.exists():
        for path in paths:
            if os.path.exists(path) and os.path.samefile(out, path):
                raise ValueError(f"--out {out_path} is the --data file {path}: choose another file")
    model = os.path.realpath(artifact_dir)
    if os.path.commonpath([os.path.realpath(out), model]) == model:
        raise ValueError(
            f"--out {out_path} is inside the artifact {artifact_dir}: write the scores elsewhere"
        )
    parent = out.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out_path}: no directory {parent}")


def reads_kdd_lines(art: Artifact) -> bool:
    """Whether the model's fields are all KDD Cup '99 columns, so that a file of CSV lines is
    input it can score; a sensor model's data must be a sensor log."""
    return all(f.path in KDD_COLUMNS for f in art.schema.fields)


def check_logs(paths: Sequence[str]) -> None:
    """Raise :func:`~trainer.readers.detect_format`'s error for the first file that is no
    sensor log (what it starts with, and a hint for Zeek TSV rows without their header);
    empty files pass, as they hold no records to score."""
    for path in paths:
        if not is_empty(os.fspath(path)):
            detect_format(path)


def written_in_place(out: pathlib.Path) -> bool:
    """Whether ``out`` is written through as it goes rather than renamed into place: a device
    or a named pipe, anything under ``/dev`` or ``/proc``, or a symbolic link.  Renaming a
    finished file onto any of them would replace the device, the pipe or the link itself
    (``/dev/stdout`` is a link to ``/proc/self/fd/1``; when stdout is a file, that link
    resolves to a regular file, and as root it was renamed over)."""
    absolute = pathlib.Path(os.path.abspath(out))
    if absolute.parts[1:2] in (("dev",), ("proc",)) or out.is_symlink():
        return True
    return out.exists() and not out.is_file()


def _write_scores(fh: BinaryIO, results: Iterable[dict], counts: dict[str, int]) -> None:
    for res in results:
        fh.write(orjson.dumps(res) + b"\n")
        counts["records"] += 1
        if "score" in res:
            counts["scored"] += 1
            counts["alerts"] += res["alert"]
        elif "skipped" in res:
            counts["skipped"] += 1
        else:
            counts["dead_letters"] += 1
