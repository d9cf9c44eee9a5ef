"""Readers for real sensor logs: Zeek conn logs (ASCII/TSV or JSON) and Suricata EVE JSON.

Why this module exists: the trainer and the replay tools learn from, and replay, flows that real
sensors wrote.  Those arrive in three documented layouts, and the detector downstream must see the
same record whichever layout a capture happens to be stored in:

* **Zeek ASCII writer** (``zeek-tsv``): a ``#separator \\x09`` line, then ``#set_separator``,
  ``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields`` (column names) and
  ``#types`` (Zeek types) header lines, one row per connection, ``#close`` at the end.  A file may
  hold several header blocks (rotation, concatenation); each ``#fields`` line starts a new one.
  Labelled captures (Stratosphere, IoT-23) add ``label`` and ``detailedlabel`` /
  ``detailed-label`` columns; IoT-23 joins its last three columns (``tunnel_parents``, ``label``,
  ``detailed-label``) with three spaces instead of the separator, in the header and in every row.
  The writer's per-filter option ``tsv = T`` leaves one header line, the column names (no
  ``#fields`` before them, no ``#types``): conn.log's documented columns are then typed from
  :data:`CONN_LOG_TYPES` and any other column is read as a string.
* **Zeek JSON writer** (``zeek-json``): one JSON object per line, unset fields left out, ``ts``
  in epoch seconds (default), ISO 8601 (``JSON::TS_ISO8601``) or integer milliseconds
  (``JSON::TS_MILLIS``).
* **Suricata EVE** (``eve-json``): one JSON object per line with ``event_type``; flow counters are
  nested (``flow.bytes_toserver``, ``flow.start``, ...).

What the reader guarantees:

* A Zeek TSV row becomes exactly the dict Zeek's JSON writer emits for that connection: typed
  values from ``#types`` (``time``/``interval``/``double`` -> float, ``count``/``int``/``port`` ->
  int, ``bool`` -> bool, containers -> lists, everything else -> str with ``\\xHH`` escapes
  decoded), unset (``-``) fields left out, ``(empty)`` -> ``[]`` or ``""``.  So TSV and JSON
  copies of a log give equal records and no caller has to care which one it got.
* Nothing is guessed or silently dropped: a row whose field count differs from ``#fields``, a
  value that does not parse as its type, a data row before any ``#fields``, or a JSON line that
  is not an object raises ``ValueError`` naming the file and line.
* gzip-, bzip2- and xz-compressed files (recognised by their magic bytes, not their names) are
  read transparently: rotated logs are usually kept compressed (``zeek-archiver`` and Zeek's
  ``LogAscii::gzip_level`` write gzip; logrotate's ``compresscmd`` is often bzip2 or xz).
* Row order is the file's order (Zeek writes a connection when it *ends*, so that is not time
  order); :func:`read_logs` sorts stably by :func:`event_time` when asked.
* :func:`stream_logs` checks the files as :func:`read_logs` does and gives the same records one
  at a time, for logs bigger than memory (``train --max-rows``: :mod:`trainer.sample`).
"""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import lzma
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from stream_od.features import epoch_seconds
from stream_od.schema.select import untagged

FORMATS = ("zeek-tsv", "zeek-json", "eve-json")
ZEEK_FORMATS = ("zeek-tsv", "zeek-json")
LABEL_KEY = "label"
DETAIL_KEYS = ("detailedlabel", "detailed-label", "detailed_label")
# IoT-23's labelled conn logs join their last three columns with three spaces.
IOT23_JOIN = "   "
JSON_SNIFF_LINES = 100  # lines a JSON log may start with that do not parse (detect_format)

# The Zeek types of conn.log's columns as Zeek documents them (Conn::Info with its conn_id, and
# the columns the policy scripts Zeek ships add: mac-logging, vlan-logging, community-id-logging,
# speculative-service): what a ``tsv = T`` log, whose header names its columns only, is read as.
CONN_LOG_TYPES = {
    "ts": "time",
    "uid": "string",
    "id.orig_h": "addr",
    "id.orig_p": "port",
    "id.resp_h": "addr",
    "id.resp_p": "port",
    "proto": "enum",
    "service": "string",
    "duration": "interval",
    "orig_bytes": "count",
    "resp_bytes": "count",
    "conn_state": "string",
    "local_orig": "bool",
    "local_resp": "bool",
    "missed_bytes": "count",
    "history": "string",
    "orig_pkts": "count",
    "orig_ip_bytes": "count",
    "resp_pkts": "count",
    "resp_ip_bytes": "count",
    "tunnel_parents": "set[string]",
    "ip_proto": "count",
    "orig_l2_addr": "string",
    "resp_l2_addr": "string",
    "vlan": "int",
    "inner_vlan": "int",
    "community_id": "string",
    "speculative_service": "string",
}
# A ``tsv = T`` header: tab-separated column names, the first of them ``ts`` (every Zeek log's
# first column; a data row starts with a number there).
_NAMES_LINE = re.compile(r"ts(?:\t[A-Za-z_][A-Za-z0-9_.\-]*(?: {3}[A-Za-z_][A-Za-z0-9_.\-]*)*)+")

_GZIP_MAGIC, _BZIP2_MAGIC, _XZ_MAGIC = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"
_HEX_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_CONTAINER_TYPE = re.compile(r"(?:set|vector|table)\[(.*)\]")
_FLOAT_TYPES = frozenset({"time", "interval", "double"})
_INT_TYPES = frozenset({"count", "int", "port"})
_BOOLS = {"T": True, "F": False}

PathLike = str | os.PathLike[str]
Converter = Callable[[str], Any]


@dataclass(frozen=True)
class LogTable:
    """Records read from one or more log files of one format.

    ``records`` holds one JSON-like dict per row, exactly as Zeek's JSON writer (Zeek input) or
    Suricata EVE (EVE input) would write it; ``fmt`` is one of :data:`FORMATS`.
    """

    records: list[dict]
    fmt: str
    paths: tuple[str, ...]
    empty: tuple[str, ...] = ()  # files given that held no line at all (skipped)

    def __len__(self) -> int:
        return len(self.records)


# --- opening files ------------------------------------------------------------------------------


def open_binary(path: str) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile | io.BufferedReader:
    """The file's bytes, decompressed when its first bytes are a gzip, bzip2 or xz header."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rb")
    if head.startswith(_BZIP2_MAGIC):
        return bz2.open(path, "rb")
    if head.startswith(_XZ_MAGIC):
        return lzma.open(path, "rb")
    return open(path, "rb")


def _open_text(path: str) -> IO[str]:
    # Zeek escapes every unprintable byte as \xHH, so a valid log is ASCII (or UTF-8 with
    # LogAscii::enable_utf_8).  A stray invalid byte becomes the text "\xHH", which the string
    # decoding below turns back into the same text: what Zeek's JSON writer shows for it.
    return io.TextIOWrapper(
        open_binary(path), encoding="utf-8", errors="backslashreplace", newline="\n"
    )


def _first_line(path: str) -> bytes | None:
    with open_binary(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                return line
    return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic dicts.

    Left on, it re-scans the records built so far again and again: reading a 100k-row log
    takes 1.5-2x as long, more when the process already holds many objects.  The records hold
    no reference cycles, so pausing it loses nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- format detection ---------------------------------------------------------------------------


def detect_format(path: PathLike) -> str:
    """``"zeek-tsv"``, ``"zeek-json"`` or ``"eve-json"``, from the first non-empty line.

    ``#separator`` starts a Zeek TSV log, and so does a line of tab-separated column names from
    ``ts`` on (the ASCII writer's ``tsv = T``); a JSON object with ``event_type`` is Suricata
    EVE; any other JSON object is Zeek JSON, also when it is not the first line (a copy of a
    log taken from an offset cuts its first line; reading the log then names that line).
    Anything else (an empty file included) raises ValueError.
    """
    path = os.fspath(path)
    line = _first_line(path)
    if line is not None:
        if line.startswith(b"#separator") or _is_names_line(line.decode("utf-8", "replace")):
            return "zeek-tsv"
        first = _first_object(path)  # a first line cut mid-object starts with no "{"
        if first is not None:
            return "eve-json" if "event_type" in first else "zeek-json"
    found = "an empty file" if line is None else f"a first line starting {line[:60]!r}"
    headless = line is not None and _is_headless_row(line)
    raise ValueError(
        f"{path}: unknown log format ({found}); expected a Zeek TSV log (first line "
        "'#separator ...', or with tsv = T the column names from 'ts' on), or Zeek JSON / "
        "Suricata EVE JSON (one JSON object per line)"
        + (
            "; this looks like Zeek TSV rows without their header (LogAscii::include_meta = "
            "F), which do not say what their columns are: write the log with its header, "
            "or as JSON"
            if headless
            else ""
        )
    )


def _is_headless_row(line: bytes) -> bool:
    """A tab-separated line that starts with an epoch time: a Zeek TSV data row."""
    first = line.split(b"\t", 1)
    try:
        return len(first) == 2 and float(first[0]) > 0
    except ValueError:
        return False


def _first_object(path: str, lines: int = JSON_SNIFF_LINES) -> dict | None:
    """The first of the file's first ``lines`` non-empty lines that is a JSON object: a log
    whose first line was cut (a sensor killed mid-write, a copy taken while it wrote) is still
    a JSON log (and reading it names the damaged line), not a file of some other kind."""
    with open_binary(path) as fh:
        seen = 0
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                return value
            seen += 1
            if seen >= lines:
                break
    return None


def is_sensor_log(paths: Iterable[PathLike]) -> bool:
    """Every path is a sensor log (Zeek TSV or JSON, Suricata EVE), by :func:`detect_format`;
    empty files count as logs when another one is a log (:func:`read_logs` skips them)."""
    found = False
    try:
        for path in paths:
            if not is_empty(os.fspath(path)):
                detect_format(path)
                found = True
    except ValueError:
        return False
    return found


def is_empty(path: str) -> bool:
    """No line at all: a log just rotated by copytruncate, or a sensor that saw nothing yet."""
    return _first_line(path) is None


def _check_fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected 'auto' or one of {FORMATS}")
    return fmt


# --- Zeek TSV -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    """A ``#fields`` (or ``#types``) line: the names and the IoT-23 three-space groups in it."""

    names: tuple[str, ...]
    groups: tuple[tuple[int, int], ...]  # (index in the separator split, columns joined there)
    raw_width: int  # tokens when split on the separator alone


@dataclass(frozen=True)
class _Layout:
    """What a data row is read with: names, types and one converter per column."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    converters: tuple[Converter, ...] = field(repr=False)
    fields: _Fields
    separator: str
    unset_field: str


def _unescape(text: str) -> str:
    """Decode Zeek's ``\\xHH`` byte escapes (bytes that are not valid UTF-8 stay ``\\xHH``)."""
    if "\\x" not in text:
        return text
    raw = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return raw.decode("utf-8", errors="backslashreplace")


def _to_float(value: str) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None  # the JSON writer writes null for nan/inf


def _to_bool(value: str) -> bool:
    try:
        return _BOOLS[value]
    except KeyError:
        raise ValueError(f"not a Zeek bool (T/F): {value!r}") from None


def _string_converter(empty_field: str) -> Converter:
    def convert(value: str) -> str:
        if value == empty_field:
            return ""
        return _unescape(value) if "\\x" in value else value

    return convert


def _split_header(value: str, separator: str) -> _Fields:
    tokens = value.split(separator)
    names: list[str] = []
    groups: list[tuple[int, int]] = []
    for index, token in enumerate(tokens):
        parts = token.split(IOT23_JOIN)
        if len(parts) > 1:
            groups.append((index, len(parts)))
        names.extend(parts)
    return _Fields(tuple(names), tuple(groups), len(tokens))


@dataclass
class _Header:
    """The header block in force: the ASCII writer's settings, ``#fields`` and ``#types``."""

    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    fields: _Fields | None = None
    types: _Fields | None = None

    def read(self, line: str) -> None:
        """Take in one ``#`` line; a ``#fields`` line starts a new block (its types unknown)."""
        if line.startswith("#separator"):  # "#separator \x09": a space, then the escaped value
            value = line[len("#separator") :]
            self.separator = _unescape(value[1:] if value[:1] in (" ", "\t") else value)
            return
        key, _, value = line.partition(self.separator)
        if key == "#fields":
            self.fields, self.types = _split_header(value, self.separator), None
        elif key == "#types":
            self.types = _split_header(value, self.separator)
        elif key in ("#set_separator", "#empty_field", "#unset_field"):
            setattr(self, key[1:], _unescape(value))

    def read_names(self, line: str) -> None:
        """Take in a ``tsv = T`` header line: the column names alone, separated by tabs (that
        mode writes no ``#separator``, so the writer's default), typed as conn.log documents
        them."""
        self.separator = "\t"
        self.fields = _split_header(line, self.separator)
        types = tuple(CONN_LOG_TYPES.get(name, "string") for name in self.fields.names)
        self.types = _Fields(types, (), len(types))

    def layout(self, source: str, lineno: int) -> _Layout:
        if self.fields is None:
            raise ValueError(
                f"{source}:{lineno}: data row before any #fields header line "
                "(not a Zeek TSV log, or its header is missing)"
            )
        names = self.fields.names
        types = self.types.names if self.types is not None else ("string",) * len(names)
        if len(types) != len(names):
            raise ValueError(
                f"{source}:{lineno}: #types lists {len(types)} types for {len(names)} #fields"
            )
        converters = tuple(self.converter(t) for t in types)
        return _Layout(names, types, converters, self.fields, self.separator, self.unset_field)

    def converter(self, zeek_type: str) -> Converter:
        container = _CONTAINER_TYPE.fullmatch(zeek_type)
        if container is None:
            return self._scalar_converter(zeek_type)
        element = self._scalar_converter(container.group(1))
        separator, empty, unset = self.set_separator, self.empty_field, self.unset_field

        def convert(value: str) -> list:
            if value == empty:
                return []
            return [None if item == unset else element(item) for item in value.split(separator)]

        return convert

    def _scalar_converter(self, zeek_type: str) -> Converter:
        if zeek_type in _FLOAT_TYPES:
            return _to_float
        if zeek_type in _INT_TYPES:
            return int
        if zeek_type == "bool":
            return _to_bool
        return _string_converter(self.empty_field)  # addr, subnet, string, enum, pattern, ...


def _is_names_line(line: str) -> bool:
    return _NAMES_LINE.fullmatch(line) is not None


def _field_count_error(source: str, lineno: int, got: int, layout: _Layout) -> ValueError:
    return ValueError(
        f"{source}:{lineno}: row has {got} fields, but #fields names {len(layout.names)}"
    )


def _row_width(values: list[str], fields: _Fields) -> int:
    """Fields in a row, counting three-space parts where ``#fields`` has its IoT-23 groups."""
    extra = sum(len(values[i].split(IOT23_JOIN)) - 1 for i, _ in fields.groups if i < len(values))
    return len(values) + extra


def _regroup(values: list[str], layout: _Layout, source: str, lineno: int) -> list[str]:
    """Split an IoT-23 row's three-space-joined fields where ``#fields`` joined them."""
    fields = layout.fields
    if not fields.groups or len(values) != fields.raw_width:
        raise _field_count_error(source, lineno, _row_width(values, fields), layout)
    out: list[str] = []
    start = 0
    for index, width in fields.groups:
        out.extend(values[start:index])
        parts = values[index].split(IOT23_JOIN, width - 1)
        if len(parts) != width:
            raise _field_count_error(source, lineno, _row_width(values, fields), layout)
        out.extend(parts)
        start = index + 1
    out.extend(values[start:])
    return out


def _bad_value(values: list[str], layout: _Layout, source: str, lineno: int) -> ValueError:
    """The ValueError for the first field of a row that does not parse as its type."""
    columns = zip(layout.names, layout.types, layout.converters, values, strict=True)
    for name, zeek_type, convert, value in columns:
        if value == layout.unset_field:
            continue
        try:
            convert(value)
        except (ValueError, TypeError) as exc:
            return ValueError(
                f"{source}:{lineno}: field {name!r} ({zeek_type}): cannot read {value!r}: {exc}"
            )
    return ValueError(f"{source}:{lineno}: row could not be read")


def zeek_tsv_records(
    lines: Iterable[str], *, source: str = "<lines>", from_file: bool = False
) -> list[dict]:
    """:func:`iter_zeek_tsv`'s records as a list."""
    with _gc_paused():
        return list(iter_zeek_tsv(lines, source=source, from_file=from_file))


def iter_zeek_tsv(
    lines: Iterable[str], *, source: str = "<lines>", from_file: bool = False
) -> Iterator[dict]:
    """Parse Zeek ASCII (TSV) log lines into dicts equal to what Zeek's JSON writer writes,
    one at a time (a week of a busy site's logs does not fit in memory: :mod:`trainer.sample`).

    ``lines`` may keep their line endings.  Lines starting with ``#`` are header lines: the
    separator settings, ``#fields`` and ``#types`` are used, every other one (``#path``,
    ``#open``, ``#close``, ...) is ignored.  Without ``#types`` every column is a string.  A
    line of column names from ``ts`` on (``tsv = T``) starts a block typed by
    :data:`CONN_LOG_TYPES`.

    ``from_file``: the lines are a file's, with their endings, so a line without one is the
    file's last, and one that does not parse is an unfinished write (:func:`_cut_short`).
    """
    header = _Header()
    layout: _Layout | None = None
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        if line[0] == "#":
            header.read(line)
            layout = None
            continue
        if line[0] == "t" and _is_names_line(line):  # tsv = T: a data row starts with ts
            header.read_names(line)
            layout = None
            continue
        if layout is None:
            layout = header.layout(source, lineno)
            names, converters, width = layout.names, layout.converters, len(layout.names)
            separator, unset = layout.separator, layout.unset_field
        values = line.split(separator)
        record = {}
        try:
            if len(values) != width:
                values = _regroup(values, layout, source, lineno)
            try:
                for name, convert, value in zip(names, converters, values, strict=True):
                    if value != unset:
                        record[name] = convert(value)
            except (ValueError, TypeError):
                raise _bad_value(values, layout, source, lineno) from None
        except ValueError:
            if not from_file or raw.endswith("\n"):
                raise
            _cut_short(source, lineno)  # only a file's last line lacks its newline
            continue
        yield record


def _cut_short(source: str, lineno: int) -> None:
    """A file whose last line is an unfinished record: a log the sensor is still writing
    (Zeek and Suricata write whole lines; a reader that copies or reads the file meanwhile
    finds the tail of one).  That line is left out, and said so, instead of failing the
    whole file; a bad line anywhere else is still an error that names it."""
    warnings.warn(
        f"{source}:{lineno}: the file ends in the middle of a record (a log still being "
        "written?); that last, unfinished line is left out",
        stacklevel=3,
    )


# --- JSON lines (Zeek JSON, Suricata EVE) --------------------------------------------------------


class UnparsedLine(dict):
    """A line of a JSON log that is no JSON object (a sensor killed mid-write, then restarted
    on the same file), kept as its bytes where the reader is asked to (``score``, which gives
    it the dead letter the worker would): an empty record, so it has no time and no fields."""

    def __init__(self, raw: bytes):
        super().__init__()
        self.raw = raw


def _not_an_object(value: object) -> str:
    """Why a JSON log's line is no record: it does not parse (``value`` is the error), or it
    is another JSON value."""
    if isinstance(value, orjson.JSONDecodeError):
        return f"not a JSON object: {value}"
    return f"expected one JSON object per line, got a JSON {type(value).__name__}"


def _iter_json(
    lines: Iterable[bytes],
    *,
    source: str,
    event_types: frozenset[str] | None,
    keep_unparsed: bool = False,
) -> Iterator[dict]:
    """A file's JSON lines (with their endings: the last one without is an unfinished
    write, :func:`_cut_short`) as records, one at a time; a line that is no JSON object is an
    error naming it, or with ``keep_unparsed`` an :class:`UnparsedLine`."""
    loads = orjson.loads
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except orjson.JSONDecodeError as exc:
            if not line.endswith(b"\n"):
                _cut_short(source, lineno)
                continue
            record = exc
        if type(record) is not dict:
            if keep_unparsed:
                yield UnparsedLine(line.rstrip(b"\r\n"))
                continue
            raise ValueError(f"{source}:{lineno}: {_not_an_object(record)}")
        if event_types is not None:
            event_type = record.get("event_type")
            if not isinstance(event_type, str) or event_type not in event_types:
                continue
        yield record


def _event_type_filter(event_types: Iterable[str] | str | None) -> frozenset[str] | None:
    if event_types is None:
        return None
    if isinstance(event_types, str):
        return frozenset((event_types,))
    return frozenset(event_types)


# --- public readers -----------------------------------------------------------------------------


def read_log(
    path: PathLike, *, fmt: str = "auto", event_types: Iterable[str] | None = ("flow",)
) -> LogTable:
    """Read one log file (plain, gzip, bzip2 or xz) in file order.

    ``fmt="auto"`` uses :func:`detect_format`.  ``event_types`` keeps only EVE records whose
    ``event_type`` is listed (a single string is one name; ``None``: all of them); it does not
    apply to Zeek logs.
    """
    path = os.fspath(path)
    fmt = detect_format(path) if fmt == "auto" else _check_fmt(fmt)
    with _gc_paused():
        records = list(iter_log(path, fmt=fmt, event_types=event_types))
    return LogTable(records=records, fmt=fmt, paths=(path,))


def iter_log(
    path: str, *, fmt: str, event_types: Iterable[str] | None, keep_unparsed: bool = False
) -> Iterator[dict]:
    """:func:`read_log`'s records one at a time, the file open while they are taken
    (``keep_unparsed``: :func:`_iter_json`'s)."""
    if fmt == "zeek-tsv":
        with _open_text(path) as fh:
            yield from iter_zeek_tsv(fh, source=path, from_file=True)
    else:
        wanted = _event_type_filter(event_types) if fmt == "eve-json" else None
        with open_binary(path) as fh:
            yield from _iter_json(fh, source=path, event_types=wanted, keep_unparsed=keep_unparsed)


@dataclass(frozen=True)
class LogStream:
    """Log files checked as :func:`read_logs` checks them, whose records are read one at a time
    (:meth:`records`), file after file, in file order: for more records than fit in memory
    (:mod:`trainer.sample`)."""

    fmt: str
    paths: tuple[str, ...]
    empty: tuple[str, ...]
    event_types: Iterable[str] | None
    keep_unparsed: bool = False  # JSON lines that are no object: UnparsedLine, not an error

    def records(self) -> Iterator[dict]:
        with _gc_paused():  # (the records hold no cycles; see _gc_paused)
            for path in self.paths:
                yield from iter_log(
                    path,
                    fmt=self.fmt,
                    event_types=self.event_types,
                    keep_unparsed=self.keep_unparsed,
                )


#: a line on stderr every this many records read (a week of logs takes minutes to read)
PROGRESS_EVERY = 1_000_000


def read_progress(command: str, every: int = PROGRESS_EVERY) -> Callable[[int], None]:
    """A callback told the records read so far, which says so on stderr each time another
    ``every`` have been read (``train: read 3,000,000 records ...``)."""
    due = every

    def progress(read: int) -> None:
        nonlocal due
        if read >= due:
            print(f"{command}: read {read:,} records ...", file=sys.stderr, flush=True)
            due = (read // every + 1) * every

    return progress


def stream_logs(
    paths: Iterable[PathLike] | PathLike,
    *,
    fmt: str = "auto",
    event_types: Iterable[str] | None = ("flow",),
    keep_unparsed: bool = False,
) -> LogStream:
    """The files of :func:`read_logs`, checked as it checks them (one format; empty files
    skipped; all of them empty is an error), not yet read (``keep_unparsed``:
    :class:`LogStream`'s)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    given = [os.fspath(p) for p in paths]
    if not given:
        raise ValueError("read_logs: no log files given")
    empty = tuple(p for p in given if len(given) > 1 and is_empty(p))
    path_list = [p for p in given if p not in empty]
    if not path_list:
        raise ValueError(f"read_logs: every file given is empty ({', '.join(given)})")
    if fmt == "auto":
        found = {path: detect_format(path) for path in path_list}
        if len(set(found.values())) > 1:
            listing = ", ".join(f"{path}: {kind}" for path, kind in found.items())
            raise ValueError(f"read_logs: all files must have one format, got {listing}")
        fmt = next(iter(found.values()))
    return LogStream(_check_fmt(fmt), tuple(path_list), empty, event_types, keep_unparsed)


def read_logs(
    paths: Iterable[PathLike] | PathLike,
    *,
    fmt: str = "auto",
    event_types: Iterable[str] | None = ("flow",),
    sort_by_time: bool = True,
) -> LogTable:
    """Read several log files of one format into one table.

    Every file must have the same format (checked before any is read).  With ``sort_by_time``
    the records are stably sorted by :func:`event_time`; records without a parsable time keep
    their relative order and go last.  Otherwise they stay in file order, file after file.

    Empty files are skipped (``LogTable.empty`` lists them): ``eve.json*`` or ``conn.*.log``
    often catches one that logrotate's copytruncate has just emptied.  All of them empty is an
    error.
    """
    stream = stream_logs(paths, fmt=fmt, event_types=event_types)
    records = list(stream.records())
    if sort_by_time:
        records = _sorted_by_time(records, stream.fmt)
    return LogTable(records=records, fmt=stream.fmt, paths=stream.paths, empty=stream.empty)


def time_key(record: dict, fmt: str) -> tuple[int, float]:
    """The key :func:`read_logs` sorts by: a record's :func:`event_time`, one without it
    after every one with."""
    return _time_order(event_time(record, fmt))


def _time_order(seconds: float | None) -> tuple[int, float]:
    return (1, 0.0) if seconds is None else (0, seconds)


def _sorted_by_time(records: list[dict], fmt: str) -> list[dict]:
    return _stably_sorted(records, [time_key(record, fmt) for record in records])


def _stably_sorted(records: list[dict], keys: list[tuple[int, float]]) -> list[dict]:
    order = sorted(range(len(records)), key=keys.__getitem__)  # sorted() is stable
    return [records[i] for i in order]


# --- time and labels ----------------------------------------------------------------------------


def sort_by_field(records: list[dict], path: str) -> list[dict]:
    """Records stably sorted by the time at ``path`` (a key, or a dotted path into nested
    objects; epoch seconds or ISO 8601), records without one last: for records that did not
    come from a file (a topic's partitions interleave).  A Suricata EVE event (it has an
    ``event_type``) goes by its ``timestamp``, as a file of them is read (:func:`time_key`):
    when Suricata logged it, the order its topic received it in, not ``flow.start``."""
    from stream_od.records import field_value

    keys = [
        time_key(record, "eve-json")
        if "event_type" in record
        else _time_order(epoch_seconds(field_value(record, path)))
        for record in records
    ]
    return _stably_sorted(records, keys)


def event_time(record: dict, fmt: str) -> float | None:
    """Epoch seconds of a record: Zeek ``ts`` (a number, integer milliseconds with
    ``JSON::TS_MILLIS``, or an ISO 8601 string; a tagged record's, inside it) or EVE
    ``timestamp`` (ISO 8601, ``+0000``-style offsets accepted); None when absent or unparsable
    (:func:`stream_od.features.epoch_seconds`).

    An ISO 8601 time without an offset is taken as UTC.
    """
    if fmt == "eve-json":
        value = record.get("timestamp")
    elif fmt in ZEEK_FORMATS:
        value = record.get("ts")
        if value is None and (tagged := untagged(record)) is not None:
            value = tagged[1].get("ts")  # zeek-kafka's {"conn": {...}}: the time inside
    else:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {FORMATS}")
    return epoch_seconds(value)


def label_columns(table: LogTable) -> tuple[str | None, str | None]:
    """Names of the label and detailed-label fields present in the table's records.

    The label is the key ``label`` in any letter case; the detail is the first present of
    ``detailedlabel``, ``detailed-label``, ``detailed_label`` (also in any letter case).
    """
    keys = set().union(*table.records) if table.records else set()
    return _find_key(keys, (LABEL_KEY,)), _find_key(keys, DETAIL_KEYS)


def _find_key(keys: set[str], candidates: tuple[str, ...]) -> str | None:
    for candidate in candidates:
        matches = sorted(key for key in keys if key.lower() == candidate)
        if matches:
            return matches[0]
    return None
