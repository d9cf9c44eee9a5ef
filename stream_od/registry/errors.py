"""The registry's errors: a broken registry, and a version it refuses to load."""

from __future__ import annotations

from stream_od.errors import StreamODError

# The ``reason`` label of ``stream_od_model_refusals_total``: a small fixed set.
REFUSAL_REASONS = (
    "integrity",  # a sha256 sum (manifest or message header) does not match the bytes
    "unsigned",  # a signing key is configured and the artifact carries no signature
    "bad_signature",  # the signature does not match the manifest under the configured key
    "malformed",  # not a valid packed artifact (paths, links, size, format, content)
    "schema",  # the worker cannot serve the artifact's feature schema
    "rollback",  # older (created_at) than a version served or published before it, not pinned
)


class RegistryError(StreamODError):
    """The registry itself cannot be used (missing, unsafe pointer, version already there)."""


class Refused(StreamODError):
    """A model version that must not be loaded; ``reason`` is one of :data:`REFUSAL_REASONS`."""

    def __init__(self, reason: str, message: str):
        assert reason in REFUSAL_REASONS, reason
        super().__init__(message)
        self.reason = reason
