"""``argparse`` types for the command lines' numbers: a value no run can mean (a negative epoch
count, a NaN learning rate, an ROC AUC floor of 2) is refused when the command line is read,
with the flag's name (argparse adds it), not accepted into an artifact or turned into a
TensorFlow error after the whole fit."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def share(text: str) -> float:
    """A share or a rate of the kind a quality gate compares with: 0 to 1."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
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
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def port(text: str) -> int:
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port, 1 to 65535, not {text}")
    return value


def percent(text: str) -> float:
    value = _float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, not {text}")
    return value


#: the slowest pace a replay keeps: one record every 1,000 s (slower overflows its sleep)
MIN_RATE = 0.001


def records_per_second(text: str) -> float:
    value = _float(text)
    if value < MIN_RATE:
        raise argparse.ArgumentTypeError(f"must be {MIN_RATE} records a second or more, not {text}")
    return value
