"""One root exception, so a caller can tell stream-od's own failures from everything else."""

from __future__ import annotations


class StreamODError(Exception):
    """Base of every error stream-od raises on purpose; its message says what to fix."""


class ConfigError(StreamODError):
    """A setting is missing or invalid; the message names it."""


class FatalWorkerError(StreamODError):
    """The worker cannot go on (fenced by a newer instance, fatal Kafka error, broken upstream).

    ``exit_code`` tells an orchestrator or an operator which kind: 1 for these, 3 for an error
    that will not clear by itself (an output topic refusing records, a missing permission),
    4 for a broker unreachable for longer than ``kafka_retry_timeout_s``.
    """

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


EXIT_STUCK = 3
EXIT_UNREACHABLE = 4


class ArtifactError(StreamODError):
    """A model artifact cannot be used (missing, modified, or not valid); the message says
    what to fix."""
