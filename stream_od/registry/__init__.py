"""Model registry: publish artifacts, find the newest one, and decide whether to trust it.

Two registries hold the same thing, a version of an artifact directory:

- :class:`~stream_od.registry.directory.DirectoryRegistry`: ``versions/<version>/`` plus a
  ``LATEST`` pointer, both written atomically;
- :class:`~stream_od.registry.topic.TopicRegistry`: one message per version on a compacted
  topic (``stream-od.models``), the packed artifact as value.

Every load goes through :func:`~stream_od.registry.verify.load_verified` (HMAC signature when a
key is configured, then the manifest's sha256 sums, then the arrays, never pickle);
:class:`~stream_od.registry.watcher.ModelWatcher` polls a registry and hands newer versions to
the worker.  ``docs/registry.md`` is the operator's view.
"""

from __future__ import annotations

from stream_od.registry.errors import REFUSAL_REASONS, RegistryError, Refused

__all__ = ["REFUSAL_REASONS", "RegistryError", "Refused"]
