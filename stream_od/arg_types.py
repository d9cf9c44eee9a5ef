"""``argparse`` types for the command lines' numbers: a value no run can mean (a negative epoch
count, a NaN learning rate, an ROC AUC floor of 2) is refused when the command line is read,
with the flag's name (argparse adds it), not accepted into an artifact or turned into a
TensorFlow error after the whole fit."""

from __future__ import annotations

import argparse
import math
from typing import TypeVar

T = TypeVar("T", int, float)


def positive_int(text: str) -> int:
    value = _int(text)
    return _checked(value, text, value >= 1, "1 or more")


def non_negative_int(text: str) -> int:
    value = _int(text)
    return _checked(value, text, value >= 0, "0 or more")


def positive_float(text: str) -> float:
    value = _float(text)
    return _checked(value, text, value > 0, "a number above 0")


def share(text: str) -> float:
    """A share or a rate of the kind a quality gate compares with: 0 to 1."""
    value = _float(text)
    return _checked(value, text, 0 <= value <= 1, "between 0 and 1")


def percent(text: str) -> float:
    value = _float(text)
    return _checked(value, text, 0 <= value <= 100, "between 0 and 100")


def port(text: str) -> int:
    value = _int(text)
    return _checked(value, text, 1 <= value <= 65535, "a TCP port, 1 to 65535")


#: the slowest pace a replay keeps: one record every 1,000 s (slower overflows its sleep)
MIN_RATE = 0.001


def is_pace(rate: float) -> bool:
    """A rate a replay can keep: finite, and :data:`MIN_RATE` records a second or more."""
    return math.isfinite(rate) and rate >= MIN_RATE


def records_per_second(text: str) -> float:
    value = _float(text)
    return _checked(value, text, is_pace(value), f"{MIN_RATE} records a second or more")


def _checked(value: T, text: str, ok: bool, must: str) -> T:
    if not ok:
        raise argparse.ArgumentTypeError(f"must be {must}, not {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    return _checked(value, text, math.isfinite(value), "a finite number")
