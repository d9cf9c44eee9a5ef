"""One root exception, so a caller can tell stream-od's own failures from everything else."""

from __future__ import annotations


class StreamODError(Exception):
    """Base of every error stream-od raises on purpose; its message says what to fix."""


class ConfigError(StreamODError):
    """A setting is missing or invalid; the message names it."""


class FatalWorkerError(StreamODError):
    """The worker cannot go on (fenced by a newer instance, fatal Kafka error, broken upstream)."""
