"""Worker configuration: one pydantic-settings class, the only place settings are read.

Sources, highest priority first: keyword arguments, ``STREAM_OD_*`` environment variables,
the file named by ``STREAM_OD_CONFIG_FILE`` (TOML or JSON), then the defaults below.
Nested dicts (``kafka``, ``consumer``, ``producer``) are JSON in the environment, e.g.
``STREAM_OD_KAFKA='{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}'``.

A bad value stops the program at start with a message that names the setting
(:func:`load_settings` turns pydantic's error into :class:`~stream_od.errors.ConfigError`), and
so does a ``STREAM_OD_*`` variable that is no setting (a misspelt one would be ignored), unless
another part of the project reads it (:data:`OTHER_STREAM_OD_ENV`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import socket
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stream_od.errors import ConfigError

ENV_PREFIX = "STREAM_OD_"
CONFIG_FILE_ENV = "STREAM_OD_CONFIG_FILE"

#: ``STREAM_OD_*`` variables that are no WorkerSettings field but that the project reads
#: elsewhere: a worker started in the same environment takes them for what they are, not for
#: misspelt settings (:func:`load_settings` refuses any other ``STREAM_OD_*`` variable).
OTHER_STREAM_OD_ENV = frozenset(
    {
        CONFIG_FILE_ENV,  # names the settings file: _FileSource, below (``--config`` sets it)
        # the publisher's Ed25519 private key: the trainer and `stream-od publish`
        # (stream_od.registry.keys.PRIVATE_KEY_ENV); docs/registry.md
        "STREAM_OD_MODEL_PRIVATE_KEY",
        "STREAM_OD_MODEL_PRIVATE_KEY_FILE",
        # the local broker's script, deploy/kafka/kafka.sh (`make kafka-up`), and what starts it:
        # benchmarks/broker_gc.py and the tests that run a broker of their own
        "STREAM_OD_CACHE",
        "STREAM_OD_KAFKA_DIR",
        "STREAM_OD_KAFKA_PORT",
        "STREAM_OD_KAFKA_CONTROLLER_PORT",
        "STREAM_OD_KAFKA_BROKER_PORT",
        "STREAM_OD_KAFKA_ADMIN_PASSWORD",
        "STREAM_OD_KAFKA_READY_TIMEOUT_S",
        "STREAM_OD_KAFKA_SECURED",
        "STREAM_OD_TEST_BOOTSTRAP",  # the broker the test suite uses (tests/conftest.py)
    }
)

# Kubernetes gives every pod variables for each Service of its namespace (service links, on
# unless enableServiceLinks is false): a Service named stream-od-<x> brings STREAM_OD_<X>_...
# ones that no part of stream-od reads; they are not refused.
_SERVICE_LINK = re.compile(
    r"(_SERVICE_HOST|_SERVICE_PORT(_\w+)?|_PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$"
)
_SERVICE_LINK_URL = re.compile(r"(tcp|udp|sctp)://")  # {SVC}_PORT=tcp://10.0.0.1:9108

# librdkafka settings the worker owns: passing them through would break exactly-once or the loop.
RESERVED_KAFKA_KEYS = frozenset(
    {
        "group.id",
        "group.instance.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "isolation.level",
        "transactional.id",
        "enable.idempotence",
        "bootstrap.servers",
    }
)

#: librdkafka settings passed through to the clients (``kafka``, ``consumer``, ``producer``)
KafkaPassThrough = dict[str, str | int | float | bool]


# librdkafka settings that have a setting of their own (which other code reads too: the flush
# bound, the lag scaler, static membership) or that the loop depends on: refused in the
# pass-through dicts, with what to set instead, rather than silently overridden.
DEDICATED_KAFKA_KEYS = {
    "max.poll.interval.ms": "is set through STREAM_OD_MAX_POLL_INTERVAL_MS",
    "group.protocol": "is set through STREAM_OD_GROUP_PROTOCOL",
    "partition.assignment.strategy": "is set through STREAM_OD_GROUP_PROTOCOL (classic: "
    "cooperative-sticky)",
    "transaction.timeout.ms": "is set through STREAM_OD_TRANSACTION_TIMEOUT_MS",
    "enable.partition.eof": "is set by each of the worker's readers as it needs",
}


def _check_reserved(value: dict) -> None:
    clash = RESERVED_KAFKA_KEYS & set(value)
    if clash:
        raise ValueError(
            f"{sorted(clash)} are set by stream-od itself; use the dedicated "
            "settings (bootstrap_servers, group_id, processing_guarantee)"
        )
    dedicated = sorted(DEDICATED_KAFKA_KEYS.keys() & set(value))
    if dedicated:
        raise ValueError("; ".join(f"{key} {DEDICATED_KAFKA_KEYS[key]}" for key in dedicated))


# Secrets: from the environment only, never from the settings file.
ENV_ONLY = frozenset({"model_signing_key"})


#: Room for a record's framing and headers beyond ``max_output_bytes``, under the producer's
#: message.max.bytes and under each output topic's max.message.bytes
#: (stream_od.kafka.topic_settings).
OUTPUT_FRAMING_BYTES = 16_384


class _FileSource(PydanticBaseSettingsSource):
    """Settings from the TOML or JSON file named by ``STREAM_OD_CONFIG_FILE``."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        path = os.environ.get(CONFIG_FILE_ENV)
        self._data: dict[str, Any] = {}
        if not path:
            return
        file = Path(path)
        if file.is_dir():
            raise ConfigError(f"{CONFIG_FILE_ENV}={path} is a directory: name a TOML or JSON file")
        if not file.is_file():
            raise ConfigError(f"{CONFIG_FILE_ENV}={path}: no such file")
        try:
            text = file.read_text()
        except OSError as exc:
            raise ConfigError(f"{CONFIG_FILE_ENV}={path}: cannot read: {exc.strerror}") from exc
        try:
            data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{CONFIG_FILE_ENV}={path}: cannot parse: {exc}") from exc
        if not isinstance(data, dict):  # JSON's 5, "hi", [1]: a TOML document is always a table
            raise ConfigError(
                f"{CONFIG_FILE_ENV}={path}: holds a JSON {type(data).__name__}, not settings: "
                'a JSON file must hold one object of settings, e.g. {"group_id": "stream-od"} '
                "(or use a TOML file)"
            )
        self._data = data
        unknown = set(self._data) - set(settings_cls.model_fields)
        if unknown:
            fields = {name: name for name in settings_cls.model_fields}
            named = ", ".join(_with_guess(str(k), str(k), fields) for k in sorted(unknown))
            raise ConfigError(f"{CONFIG_FILE_ENV}={path}: unknown setting(s) {named}")
        if ENV_ONLY & set(self._data):
            raise ConfigError(
                f"{CONFIG_FILE_ENV}={path}: {sorted(ENV_ONLY & set(self._data))} "
                "is a secret: set it in the environment, not in a file"
            )

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class WorkerSettings(BaseSettings):
    """Everything a stream worker needs to know; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # Kafka
    bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    input_topic: str = Field("stream-od.connections", min_length=1)
    alerts_topic: str = Field("stream-od.alerts", min_length=1)
    dead_letter_topic: str = Field("stream-od.dead-letter", min_length=1)
    scores_topic: str | None = Field(None, description="also write every score here when set")
    group_id: str = Field("stream-od", min_length=1)
    group_protocol: Literal["classic", "consumer"] = Field(
        "classic", description="classic = cooperative-sticky rebalancing; consumer = KIP-848"
    )
    # Static membership (KIP-345, classic protocol): group.instance.id = instance_id, so a
    # worker restarted after a crash gets its partitions back at once instead of after the
    # dead member's session timeout; the cost is that a worker stopped for good holds its
    # partitions until session.timeout.ms (45 s) runs out.
    static_membership: bool = True
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    transactional_id_prefix: str = Field("stream-od", min_length=1)
    instance_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="unique per running worker and stable across its restarts (a pod or host "
        "name): it names the transactional id, so a restart fences its predecessor",
    )
    transaction_timeout_ms: int = Field(30_000, ge=1_000, le=900_000)
    kafka: KafkaPassThrough = Field(
        default_factory=dict, description="librdkafka settings for every client (security, tuning)"
    )
    consumer: dict[str, str | int | float | bool] = Field(default_factory=dict)
    producer: dict[str, str | int | float | bool] = Field(default_factory=dict)

    # Micro-batching
    max_batch_records: int = Field(1000, ge=1, le=100_000)
    # The batching period: a batch is taken when it is full or this long after the last one
    # was taken (a batch's processing counts towards it), so it bounds the latency batching
    # adds and the transaction rate (one commit, 5-10 ms here, per period at most).
    max_batch_wait_ms: int = Field(25, ge=0, le=60_000)
    # true: when behind (full batches), commit a batch's transaction while the next one is
    # decoded and scored (the commit is round trips to the broker, idle time for the loop):
    # drains a backlog 1.15-1.3x as fast, but near capacity with many alerts it raised latency
    # (benchmarks/results/stream_overlap_zeek.json), so it is off unless asked for.
    overlap_commits: bool = False
    max_record_bytes: int = Field(64 * 1024, ge=64)
    input_format: Literal["auto", "json", "csv"] = "auto"
    # Where a neural detector scores: numpy on the CPU, or TensorFlow on a GPU (stream-od[gpu]);
    # auto takes a GPU when there is one (stream_od.detector.device).
    scoring_device: Literal["auto", "cpu", "gpu"] = "auto"
    # How the numpy pass sums each layer.  exact: in a fixed order, so a record's score is the
    # same bits in any micro-batch and in `stream-od score`.  blas: the BLAS matrix product,
    # which on wide schemas (zeek-conn's 81 columns) scores about 1.5x as fast as the exact
    # sums in einsum (the worker no faster end to end), the scores the same to about 1e-13 of
    # the energy, but no longer bit for bit (stream_od.detector.forward).
    scoring_sums: Literal["exact", "blas"] = "exact"
    # A micro-batch's repeated feature rows (a scan's unanswered SYNs to one port are all the
    # same row) are scored once and their results copied: with exact sums the same bits as
    # scoring each, at about 0.1 us a record to find them (stream_od.detector.distinct).
    # "each" scores every row as it comes.
    scoring_repeated_rows: Literal["once", "each"] = "once"
    max_poll_interval_ms: int = Field(300_000, ge=10_000)
    # Stop instead of draining everything into the dead-letter topic when upstream is broken:
    # over the last ``dead_letter_window`` records, more than this ratio invalid is fatal.
    max_dead_letter_ratio: float = Field(1.0, gt=0.0, le=1.0)
    dead_letter_window: int = Field(10_000, ge=100)
    # Every record the worker writes (alert, dead letter, score) is kept under this size, so
    # no input can make the producer refuse an output (librdkafka's message.max.bytes is
    # 1,000,000 by default, the broker's max.message.bytes 1,048,588).
    max_output_bytes: int = Field(900_000, ge=16_384, le=100_000_000)

    # Bounded failure: a batch whose transaction keeps failing (an output topic refusing the
    # record, no WRITE permission) is retried with backoff this many times, then the worker
    # stops with a message naming the topic; a broker outage is waited out this long.
    max_batch_attempts: int = Field(5, ge=1, le=100)
    kafka_retry_timeout_s: float = Field(300.0, gt=0, le=86_400)

    # Traffic windows across partitions (docs/windows.md): a host's windows are whole only when
    # all its records reach one partition, and a topic has one key.  A *windows stage* worker
    # (windows_stage_topic set) computes the windows of ``windows_stage_roles`` on a topic keyed
    # by those roles' host, and writes each record, their values added, to windows_stage_topic
    # keyed by ``windows_stage_key``; the scoring worker downstream reads that topic and takes
    # those roles' values from the records (``windows_carried``) instead of computing them.
    windows_stage_topic: str | None = Field(
        None, description="be a windows stage: write records with window values here, no scoring"
    )
    windows_stage_roles: list[str] = Field(default_factory=lambda: ["src"])
    windows_stage_key: str = Field(
        "id.resp_h", min_length=1, description="the record path that keys windows_stage_topic"
    )
    windows_carried: list[str] = Field(
        default_factory=list, description="window roles an upstream windows stage computed"
    )

    # Model and alerts
    artifact_path: Path = Field(Path("artifacts/latest"))
    top_features: int = Field(3, ge=0, le=64)
    severity_margins: tuple[float, float, float] = Field(
        (0.5, 2.0, 8.0),
        description="score-threshold margins (in units of the artifact's score scale) for "
        "medium, high, critical",
    )
    # What the SIEM receives (docs/siem.md): stream-od's own document, Elastic Common Schema,
    # or an OCSF Detection Finding.
    alert_format: Literal["native", "ecs", "ocsf"] = "native"
    # Suppression (docs/siem.md): per entity, the first alert of a window of this many seconds
    # of event time is emitted, the rest counted into one summary alert when the window ends.
    # 0 turns it off.  ``suppress_by``: connection parts (source_ip, destination_ip,
    # destination_port, transport, session_id) or record field paths; the detector is always
    # part of the entity.  Its state is kept in a compacted changelog topic.
    suppress_window_s: float = Field(0.0, ge=0, le=86_400)
    suppress_by: list[str] = Field(default_factory=lambda: ["source_ip"], min_length=1)
    suppression_changelog_topic: str = Field("stream-od.alerts-suppression", min_length=1)
    # Last resort against a flood: at most this many alerts a second per worker (summaries
    # excepted); the excess is dropped and counted in stream_od_alerts_dropped_total. 0 = off.
    max_alerts_per_second: float = Field(0.0, ge=0)

    # Model registry (docs/registry.md): "path" serves artifact_path and never swaps;
    # "directory" / "topic" start from the newest verified version and watch for newer ones.
    model_source: Literal["path", "directory", "topic"] = "path"
    model_registry_dir: Path | None = Field(None, description="directory registry root")
    model_topic: str = Field("stream-od.models", min_length=1)
    # The models reader assigns the topic's one partition itself and never joins its group or
    # commits, but the client still looks the group up (DESCRIBE): a fixed id, so one LITERAL
    # ACL covers it (docs/security.md).
    model_reader_group_id: str | None = Field(
        None,
        min_length=1,
        description="consumer group id of the models-topic reader (default: <group_id>.models)",
    )
    model_poll_interval_s: float = Field(10.0, gt=0, le=3600)
    # Who may publish: the Ed25519 public key of the publisher (it alone holds the private key),
    # or, weaker, an HMAC secret that every worker shares (so any worker could sign).  The
    # *_file forms name a mounted Docker or Kubernetes secret, read when the settings load.
    model_public_key: str | None = Field(
        None,
        description="Ed25519 public key of the publisher (PEM or 64 hex characters): when "
        "set, only artifacts signed with its private key are served",
    )
    model_public_key_file: Path | None = Field(None, description="file holding model_public_key")
    model_signing_key: SecretStr | None = Field(
        None,
        min_length=16,
        description="HMAC-SHA256 key shared with the publisher (environment "
        "only; weaker than model_public_key): when set, only "
        "artifacts signed with it are served",
    )
    model_signing_key_file: Path | None = Field(
        None, description="file holding model_signing_key (a mounted secret)"
    )
    # Rollback protection: a version older (created_at) than the one served is refused, unless
    # an operator pins the version to serve; the worker then serves that one and no other.
    model_pin_version: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$",
        description="serve exactly this model version, even one older than the version served",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_model_key_files(cls, data: Any) -> Any:
        """``model_*_key_file`` read into ``model_*_key``, so the rest of the program sees one
        setting per key and a bad file stops the worker at start, naming the setting."""
        if not isinstance(data, dict):
            return data
        from stream_od.registry import keys

        data = dict(data)
        for field, parse in (
            ("model_public_key", keys.public_key_file_text),
            ("model_signing_key", keys.hmac_key_file_text),
        ):
            path = data.get(field + "_file")
            if not path:
                continue
            if data.get(field):
                raise ValueError(f"{field} and {field}_file are both set: keep one")
            data[field] = parse(path, ENV_PREFIX + (field + "_file").upper())
        return data

    @model_validator(mode="after")
    def _one_model_trust(self) -> WorkerSettings:
        from stream_od.registry import keys

        if self.model_public_key and self.model_signing_key is not None:
            raise ValueError(
                "model_public_key and model_signing_key are both set (or their "
                "_file forms): a worker checks one scheme; keep the public key"
            )
        if self.model_public_key:
            keys.parse_public_key(self.model_public_key.encode(), ENV_PREFIX + "MODEL_PUBLIC_KEY")
        if self.model_pin_version and self.model_source == "path":
            raise ValueError(
                "model_pin_version needs a registry (model_source directory or "
                "topic); with model_source path, set artifact_path instead"
            )
        return self

    # Operations
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(9108, ge=0, le=65535)
    shutdown_grace_s: float = Field(30.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _FileSource(settings_cls))

    @field_validator("kafka", "consumer", "producer")
    @classmethod
    def _no_reserved_keys(cls, value: dict) -> dict:
        _check_reserved(value)
        return value

    @model_validator(mode="after")
    def _topics_differ(self) -> WorkerSettings:
        outputs = [
            self.alerts_topic,
            self.dead_letter_topic,
            self.scores_topic,
            self.windows_stage_topic,
            self.suppression_changelog_topic if self.suppress_window_s else None,
        ]
        if self.input_topic in outputs:
            raise ValueError(f"input_topic {self.input_topic!r} must differ from the output topics")
        if self.model_source == "directory" and self.model_registry_dir is None:
            raise ValueError("model_source 'directory' needs model_registry_dir")
        if self.model_source == "topic" and self.model_topic in [self.input_topic, *outputs]:
            raise ValueError(f"model_topic {self.model_topic!r} must differ from the data topics")
        if 2 * self.max_record_bytes > self.max_output_bytes:
            raise ValueError(
                f"max_record_bytes {self.max_record_bytes} must be at most half of "
                f"max_output_bytes {self.max_output_bytes} (an alert carries the "
                "record, its key and the model's figures)"
            )
        limit = int(self.producer.get("message.max.bytes", 1_000_000))
        if self.max_output_bytes + OUTPUT_FRAMING_BYTES > limit:
            raise ValueError(
                f"max_output_bytes {self.max_output_bytes} leaves no room under the "
                f"producer's message.max.bytes {limit}: lower it, or raise "
                "message.max.bytes in STREAM_OD_PRODUCER (and the topics' "
                "max.message.bytes)"
            )
        m = self.severity_margins
        if not (0 <= m[0] <= m[1] <= m[2]):
            raise ValueError("severity_margins must be non-negative and ascending")
        return self

    def written_topics(self) -> dict[str, str]:
        """The topics this worker writes records to, by the setting that names each (the
        suppression changelog aside: it may be created at run time).  A windows stage scores
        nothing, so it writes neither alerts nor scores: only its stage topic and dead
        letters, and it needs WRITE on nothing else."""
        if self.windows_stage_topic is not None:
            return {
                "windows_stage_topic": self.windows_stage_topic,
                "dead_letter_topic": self.dead_letter_topic,
            }
        out = {"alerts_topic": self.alerts_topic, "dead_letter_topic": self.dead_letter_topic}
        if self.scores_topic:
            out["scores_topic"] = self.scores_topic
        return out

    def client_config(self, extra: dict[str, Any]) -> dict[str, Any]:
        """librdkafka config: bootstrap + the shared pass-through + a client's own settings."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.kafka, **extra}


def cli_kafka_config(bootstrap_servers: str) -> dict[str, Any]:
    """librdkafka settings for the trainer's and ``publish``'s short-lived clients: the
    bootstrap address they were given, plus ``STREAM_OD_KAFKA`` from the environment (the
    workers' security and tuning pass-through), so one Secret serves every client."""
    env = ENV_PREFIX + "KAFKA"
    raw = os.environ.get(env, "").strip()
    extra: dict[str, Any] = {}
    if raw:
        try:
            extra = TypeAdapter(KafkaPassThrough).validate_json(raw)
            _check_reserved(extra)
        except (ValidationError, ValueError) as exc:
            raise ConfigError(f"{env}: not a JSON object of librdkafka settings ({exc})") from None
    return {"bootstrap.servers": bootstrap_servers, **extra}


def _with_guess(name: str, key: str, known: Mapping[str, str]) -> str:
    """``name``, and what ``known`` maps the key closest to ``key`` to, when one is close
    enough to be a misspelling of it."""
    guess = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
    return f"{name} (did you mean {known[guess[0]]}?)" if guess else name


def _prefixed_env(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{NAME: (name as set, value)}`` of the ``STREAM_OD_*`` variables, matched without
    regard to case, as pydantic-settings reads them."""
    return {
        name.upper(): (name, value)
        for name, value in environ.items()
        if name.upper().startswith(ENV_PREFIX)
    }


def unknown_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The ``STREAM_OD_*`` variables that neither a setting nor another part of the project
    (:data:`OTHER_STREAM_OD_ENV`) reads, each with the setting it probably meant."""
    # compared without the prefix, which every name shares and would make any two look alike
    settings = {name.upper(): ENV_PREFIX + name.upper() for name in WorkerSettings.model_fields}
    settings["CONFIG_FILE"] = CONFIG_FILE_ENV
    known = OTHER_STREAM_OD_ENV | set(settings.values())
    out = []
    for upper, (name, value) in sorted(_prefixed_env(environ).items()):
        if upper in known:
            continue
        if _SERVICE_LINK.search(upper) or (
            upper.endswith("_PORT") and _SERVICE_LINK_URL.match(value)
        ):
            continue
        out.append(_with_guess(name, upper.removeprefix(ENV_PREFIX), settings))
    return out


def _json_kind(annotation: Any) -> str | None:
    """What pydantic-settings wants a dict or list setting to be in the environment: JSON."""
    origin = get_origin(annotation) or annotation
    if origin in (Union, types.UnionType):
        kinds = [_json_kind(a) for a in get_args(annotation) if a is not type(None)]
        return next((k for k in kinds if k), None)
    if origin is dict:
        return "object"
    if origin in (list, tuple, set, frozenset):
        return "array"
    return None


def _not_json(environ: Mapping[str, str]) -> list[str]:
    """The dict and list settings whose variable is not JSON, each with what it takes."""
    env = _prefixed_env(environ)
    out = []
    for field, info in WorkerSettings.model_fields.items():
        kind = _json_kind(info.annotation)
        found = env.get(ENV_PREFIX + field.upper())
        if kind is None or found is None:
            continue
        name, value = found
        try:
            json.loads(value)
        except ValueError as exc:
            default = info.get_default(call_default_factory=True)
            example = (
                json.dumps(list(default) if isinstance(default, tuple) else default)
                if default
                else ('{"socket.timeout.ms": 5000}' if kind == "object" else '["src"]')
            )
            out.append(
                f"{name} is not JSON ({exc}): {field} takes a JSON {kind}, e.g. {name}='{example}'"
            )
    return out


def load_settings(**overrides: Any) -> WorkerSettings:
    """Build settings, turning validation errors into one message that names each bad setting.
    A ``STREAM_OD_*`` variable that is no setting is refused too, naming the setting it
    probably meant (a misspelt setting would otherwise be ignored, unlike one in the file)."""
    unknown = unknown_env()
    if unknown:
        raise ConfigError(
            f"unknown environment variable(s) {', '.join(unknown)}: a {ENV_PREFIX}* variable "
            "must name a setting (README, Configuration); fix or unset it"
        )
    try:
        return WorkerSettings(**overrides)
    except SettingsError as exc:  # a dict or list setting's variable that is not JSON
        problems = _not_json(os.environ) or [str(exc)]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            env = ENV_PREFIX + str(err["loc"][0]).upper() if err["loc"] else ""
            where = f"{name} ({env})" if env else name
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
