"""``stream-od publish`` and ``stream-od keygen``, and the publishing step of ``stream-od train``.

Publishing verifies the artifact (sha256 manifest), signs a staged copy with the Ed25519
private key (``STREAM_OD_MODEL_PRIVATE_KEY_FILE``, from ``stream-od keygen``) and/or the older
shared HMAC key (``STREAM_OD_MODEL_SIGNING_KEY``), and puts it on a directory registry and/or
a Kafka models topic (see ``docs/registry.md``).  ``train`` publishes only what passed
:mod:`trainer.gate`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from typing import TYPE_CHECKING, Literal

from trainer import gate

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def publish(
    artifact_dir,
    *,
    registry_dir=None,
    topic=None,
    bootstrap_servers="127.0.0.1:9092",
    key: bytes | None = None,
    private_key: Ed25519PrivateKey | None | Literal["env"] = "env",
) -> dict:
    """Publish one artifact; returns ``{"version", "signed", "signatures", "registry_dir"?,
    "topic"?, "offset"?}``.  The topic's client also takes ``STREAM_OD_KAFKA`` (security
    settings), as the workers do.

    ``private_key``: the Ed25519 key to sign with; ``"env"`` (the default) reads
    ``STREAM_OD_MODEL_PRIVATE_KEY_FILE`` / ``STREAM_OD_MODEL_PRIVATE_KEY``, so ``train
    --publish-*`` signs the same way.  ``key``: the older HMAC key, written as well when given
    (workers still on HMAC keep accepting the version while others move to the public key).
    The artifact is read once, its sums checked and its content loaded, and the staged copy
    is written from those bytes, so what is signed is what was checked."""
    from stream_od.config import cli_kafka_config
    from stream_od.registry import keys, signing
    from stream_od.registry.directory import DirectoryRegistry
    from stream_od.registry.loading import read_artifact
    from stream_od.registry.topic import TopicRegistry
    from stream_od.registry.verify import build, verify_files

    if registry_dir is None and topic is None:
        raise ValueError("nowhere to publish: give a registry directory and/or a topic")
    if private_key == "env":
        private_key = keys.private_key_from_env()
    registry = None
    if topic is not None:  # credentials and permissions first: fail before any work
        registry = TopicRegistry(topic, cli_kafka_config(bootstrap_servers))
        registry.check_publish_access()
    src = pathlib.Path(artifact_dir)
    verified = verify_files(read_artifact(src), None, src.name)  # refuses a modified artifact
    art = build(verified)
    signatures = [
        name for name, k in (("ed25519", private_key), ("hmac-sha256", key)) if k is not None
    ]
    out: dict = {"version": art.version, "signed": bool(signatures), "signatures": signatures}
    with tempfile.TemporaryDirectory(prefix="stream-od-publish-") as tmp:
        staged = pathlib.Path(tmp) / art.version
        staged.mkdir()
        for name, data in verified.files.items():  # manifest and listed files only
            (staged / name).write_bytes(data)
        if private_key is not None:
            signing.sign_ed25519(staged, private_key)
        if key is not None:
            signing.sign(staged, key)
        if registry_dir is not None:
            DirectoryRegistry(registry_dir).publish(staged)
            out["registry_dir"] = str(registry_dir)
        if registry is not None:  # set exactly when topic is
            _, out["offset"] = registry.publish(staged)
            out["topic"] = topic
    return out


def after_train(args: argparse.Namespace, art, out: pathlib.Path) -> int:
    """Gate, then publish; returns the exit code (0, or :data:`trainer.gate.EXIT_GATE`)."""
    from stream_od.registry import signing

    below = gate.failures(args, art)
    if below:
        gate.report(art, below)
        return gate.EXIT_GATE
    if args.publish_dir or args.publish_topic:
        result = publish(
            out,
            registry_dir=args.publish_dir,
            topic=args.publish_topic,
            bootstrap_servers=args.bootstrap_servers,
            key=signing.key_from_env(),
        )
        print(json.dumps({"published": result}), file=sys.stderr)
    return 0


def _signing_keys(args: argparse.Namespace):
    """``(hmac_key, private_key)`` for ``publish``: ``--private-key-file``, else the environment
    (``STREAM_OD_MODEL_PRIVATE_KEY[_FILE]``, ``STREAM_OD_MODEL_SIGNING_KEY[_FILE]``)."""
    from stream_od.registry import keys

    private: Ed25519PrivateKey | None
    if args.private_key_file:
        private = keys.parse_private_key(
            keys.read_key_file(args.private_key_file, "--private-key-file"), "--private-key-file"
        )
    else:
        private = keys.private_key_from_env()
    hmac_key = keys.key_from_env()
    if private is None and hmac_key is None:
        print(
            f"publish: no signing key ({keys.PRIVATE_KEY_ENV}_FILE, or --private-key-file): "
            "publishing unsigned (workers with a key configured will refuse it)",
            file=sys.stderr,
        )
    elif private is None:
        print(
            f"publish: signing with the shared HMAC key ({keys.SIGNING_KEY_ENV}) only; workers "
            "that hold only the public key will refuse it (see `stream-od keygen`)",
            file=sys.stderr,
        )
    return hmac_key, private


def _run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from stream_od.artifact import ArtifactError
    from stream_od.errors import StreamODError

    try:
        hmac_key, private = _signing_keys(args)
        result = publish(
            args.artifact,
            registry_dir=args.registry_dir,
            topic=args.topic,
            bootstrap_servers=args.bootstrap_servers,
            key=hmac_key,
            private_key=private,
        )
    except (ArtifactError, StreamODError, ValueError, OSError, KafkaException) as exc:
        print(f"stream-od publish: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from stream_od.registry import keys

    try:
        private, public = keys.generate(args.out)
    except OSError as exc:
        print(f"stream-od keygen: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "private_key": str(private),
                "public_key": str(public),
                "publisher": f"{keys.PRIVATE_KEY_ENV}_FILE={private}",
                "workers": f"{keys.PUBLIC_KEY_ENV}_FILE={public}",
            }
        )
    )
    print(
        f"keygen: give {private.name} (mode 0600) only to the trainer / stream-od publish, "
        f"and {public.name} to the workers",
        file=sys.stderr,
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "publish",
        help="publish an artifact to a model registry",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--artifact", required=True, metavar="DIR", help="artifact directory")
    p.add_argument("--registry-dir", metavar="D", help="directory registry root")
    p.add_argument(
        "--topic",
        metavar="T",
        nargs="?",
        const="stream-od.models",
        help="models topic (default stream-od.models)",
    )
    p.add_argument(
        "--bootstrap-servers",
        default="127.0.0.1:9092",
        help="Kafka for --topic; security settings come from STREAM_OD_KAFKA",
    )
    p.add_argument(
        "--private-key-file",
        metavar="F",
        help="Ed25519 private key to sign with (default: "
        "STREAM_OD_MODEL_PRIVATE_KEY_FILE); see stream-od keygen",
    )
    p.set_defaults(func=_run)
    k = subparsers.add_parser(
        "keygen",
        help="write an Ed25519 key pair for signing models",
        description="Write model-signing.key (private, mode 0600: for the trainer and "
        "stream-od publish only) and model-signing.pub (public: for the workers, "
        "STREAM_OD_MODEL_PUBLIC_KEY_FILE) into --out.  Existing keys are never "
        "overwritten.  See docs/registry.md.",
    )
    k.add_argument("--out", required=True, metavar="DIR", help="directory for the key pair")
    k.set_defaults(func=_keygen)
