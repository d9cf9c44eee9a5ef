"""Model registry: publish artifacts, find the newest one, and decide whether to trust it.

Two registries hold the same thing, a version of an artifact directory:

- :class:`~stream_od.registry.directory.DirectoryRegistry`: ``versions/<version>/`` plus a
  ``LATEST`` pointer, both written atomically;
- :class:`~stream_od.registry.topic.TopicRegistry`: one message per version on a compacted
  topic (``stream-od.models``), the packed artifact as value.

Every load reads each file once and checks those bytes
(:func:`~stream_od.registry.verify.verify_files`: the Ed25519 signature under the publisher's
public key, or the older HMAC, per :class:`~stream_od.registry.signing.Trust`; then the
manifest's sha256 sums), then loads exactly those bytes (:mod:`~stream_od.registry.loading`),
never pickle.  Packed artifacts are parsed strictly (:mod:`~stream_od.registry.pack`), so no
header can make a worker allocate more than the message holds.
:class:`~stream_od.registry.watcher.ModelWatcher` polls a registry, refuses rollbacks unless a
version is pinned, and hands newer versions to the worker.  ``docs/registry.md`` is the
operator's view.
"""

from __future__ import annotations

from stream_od.registry.errors import REFUSAL_REASONS, Refused, RegistryError

__all__ = ["REFUSAL_REASONS", "RegistryError", "Refused"]
