"""JSON text that can always be written: what comes out of a record (a lone surrogate that
Python's JSON parser let through, an integer past 64 bits, nesting deeper than orjson writes)
made writable, so that no record's content can make an alert fail to be written."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of a decoded JSON value that orjson can always write."""
    if depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels>"
    if isinstance(value, dict):
        return {json_safe_text(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, str):
        return json_safe_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 64) else str(value)
    return json_safe_text(str(value))


def json_safe_text(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
