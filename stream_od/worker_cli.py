"""``stream-od worker``: load settings and the model, serve metrics, run the loop, stop cleanly.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a configuration or artifact problem
found at start (the message says what to fix), 1 when the worker had to stop (fenced, fatal
Kafka error, too many invalid records) or did not stop within ``shutdown_grace_s``, 3 when a
batch kept failing for a reason that will not clear by itself (an output topic refusing
records, a missing permission: the message names the topic and the fix), 4 when the brokers
stayed unreachable past ``kafka_retry_timeout_s``.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading

log = logging.getLogger("stream_od.worker")

EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="score a Kafka topic with a trained model and emit alerts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML or JSON settings file (same as STREAM_OD_CONFIG_FILE)",
    )
    p.add_argument(
        "--artifact", metavar="DIR", help="artifact directory (overrides STREAM_OD_ARTIFACT_PATH)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stream_od.config import load_settings
    from stream_od.errors import ConfigError, FatalWorkerError

    if args.config:
        os.environ["STREAM_OD_CONFIG_FILE"] = args.config
    overrides = {"artifact_path": args.artifact} if args.artifact else {}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"stream-od worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        worker, server, watcher = _start(settings)
    except (ConfigError, FatalWorkerError) as exc:
        print(f"stream-od worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    stopping: list[bool] = []

    def on_signal(signum, _frame):
        if stopping:  # a second signal neither restarts the grace nor moves its backstop
            return
        stopping.append(True)
        log.info(
            "%s: finishing the batch in flight, then stopping (grace %.0f s)",
            signal.Signals(signum).name,
            settings.shutdown_grace_s,
        )
        worker.stop()
        arm_grace(settings.shutdown_grace_s, lambda: _give_up(settings))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.run()
    except FatalWorkerError as exc:
        log.error("stopping: %s", exc)
        return exc.exit_code
    except ConfigError as exc:  # found once running (a suppression changelog it cannot create)
        log.error("stopping: %s", exc)
        return EXIT_CONFIG
    finally:
        if watcher is not None:
            watcher.stop()
        server.stop()
    log.info("stopped cleanly")
    return EXIT_OK


#: seconds after the grace at which the interpreter-independent backstop ends the process
BACKSTOP_S = 5.0


def arm_grace(grace_s: float, give_up) -> None:
    """After ``grace_s``, ``give_up()`` (log and exit) from a timer thread; and, should that
    thread never get to run, because a C call holds the interpreter (a client library stuck
    with the GIL held), ``faulthandler``'s watchdog, which runs outside the interpreter, writes
    every thread's stack to stderr and exits with 1 ``BACKSTOP_S`` later.  So a stop is bounded
    whatever the process is stuck in, and the stacks say where it was."""
    timer = threading.Timer(grace_s, give_up)
    timer.daemon = True
    timer.start()
    faulthandler.dump_traceback_later(grace_s + BACKSTOP_S, exit=True)


def _give_up(settings) -> None:
    log.error(
        "did not stop within shutdown_grace_s=%s; exiting without committing the batch "
        "in flight (it will be re-processed)",
        settings.shutdown_grace_s,
    )
    logging.shutdown()
    os._exit(EXIT_FATAL)


def _start(settings):
    """Load and check everything the loop needs; raise ConfigError with what to fix."""
    from stream_od.errors import ConfigError
    from stream_od.kafka.clients import transactional_id
    from stream_od.metrics import Health, WorkerMetrics
    from stream_od.worker import Worker

    metrics = WorkerMetrics()
    settings, stage_window = _check_kafka(settings)
    model, watcher = _first_model(settings, metrics)
    if model.schema.windows is not None and not _restores_state(settings):
        # known only now: the windows are rebuilt by the restore reader, whose group the first
        # check did not cover (the rest it did)
        from stream_od.kafka.topics import check_access

        check_access(settings.client_config({}), [_restore_need(settings)])
    health = Health(stale_after_s=max(30.0, 3 * settings.max_batch_wait_ms / 1000))
    try:
        worker = Worker(settings, model, metrics=metrics, health=health, stage_window=stage_window)
    except ValueError as exc:  # the schema cannot be served with these settings
        raise ConfigError(f"model {model.version} cannot be served: {exc}") from exc
    if settings.processing_guarantee == "exactly_once":
        log.info(
            "transactional id %r (a secured cluster needs WRITE on it; docs/security.md)",
            transactional_id(settings),
        )
    server = _serve_metrics(settings, metrics, health)
    log.info(
        "model %s (%s, %d features, threshold %.6g), scoring with %s; metrics on "
        "http://%s:%d/metrics",
        model.version,
        model.detector_kind,
        len(model.feature_names),
        model.threshold,
        worker.scorer.placement,
        settings.metrics_host,
        server.port,
    )
    if watcher is not None:
        watcher.accept = _swapper(settings, worker, checked=model.schema.windows is not None)
        watcher.start()
        log.info(
            "watching %r for newer models every %.3g s",
            watcher.source,
            settings.model_poll_interval_s,
        )
    return worker, server, watcher


def _serve_metrics(settings, metrics, health):
    """The metrics and probes server, started; a port taken by another process (or an address
    this host does not have, a port it may not open) is a ConfigError naming the setting."""
    import errno

    from stream_od.errors import ConfigError
    from stream_od.metrics import MetricsServer

    host, port = settings.metrics_host, settings.metrics_port
    try:
        return MetricsServer(metrics, health, host, port).start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fix = (
                f"port {port} (STREAM_OD_METRICS_PORT) is already in use on {host}: set "
                "STREAM_OD_METRICS_PORT to a free port, or stop the process that holds it"
            )
        else:
            fix = (
                f"cannot listen on {host}:{port} (STREAM_OD_METRICS_HOST, "
                f"STREAM_OD_METRICS_PORT): {exc.strerror or exc}"
            )
        raise ConfigError(f"cannot serve metrics: {fix}") from exc


def _swapper(settings, worker, *, checked: bool):
    """What the model watcher hands a newer model to: ``worker.swap_model``, after checking,
    the first time a model with traffic windows comes, the restore group's ACL the windows
    need, which no start-up check covered (``checked``: one already did).  A missing ACL
    refuses that version (ConfigError naming it; the worker keeps its model) instead of
    stopping the worker at its next assignment.  Brokers out of reach are no verdict: the
    model is taken, and the restore says what is wrong should it fail."""
    from stream_od.errors import ConfigError
    from stream_od.kafka.topics import access_problems, connect, principal

    done = checked or _restores_state(settings)

    def accept(model) -> None:
        nonlocal done
        if model.schema.windows is not None and not done:
            config = settings.client_config({})
            try:
                admin = connect(config)
            except ConfigError as exc:
                log.warning(
                    "could not check the restore group's ACL for %s: %s", model.version, exc
                )
            else:
                problems = access_problems(admin, principal(config), [_restore_need(settings)])
                if problems:
                    raise ConfigError("; ".join(problems))
                done = True
        worker.swap_model(model)

    return accept


def _restores_state(settings) -> bool:
    """Whether the settings alone say that the worker reads state back when partitions are
    assigned (the suppression changelog; the input, to rebuild a windows stage's windows), with
    an assign-only consumer in the group ``<group_id>.restore``; a scoring worker whose model
    has traffic windows does too, which is known once the model is loaded."""
    return settings.suppress_window_s > 0 or settings.windows_stage_topic is not None


def _restore_need(settings):
    """DESCRIBE on the restore reader's group: it looks up the group's coordinator."""
    from stream_od.kafka import clients
    from stream_od.kafka.topics import Need

    group = clients.restore_group_id(settings)
    return Need("group", group, "DESCRIBE", "<STREAM_OD_GROUP_ID>.restore")


def _check_kafka(settings):
    """Before anything else: reach the brokers and authenticate, then check every topic and
    group the worker uses, with the permission it needs on each (docs/security.md), and the
    output topics' settings (:func:`_check_outputs`).  Raises ConfigError that names the
    failure: credentials or TLS (librdkafka's reason), unreachable brokers, a missing topic,
    or the missing ACLs, all of them at once.  The transactional id cannot be checked without
    using it (fencing the previous instance): it is logged at start, and init_transactions
    fails on it at once when WRITE on it is missing.  Returns the settings (with the
    producer's batch.size lowered where a topic needs it) and the windows stage topic's
    timestamp window."""
    from stream_od.kafka.topics import Need, check_access
    from stream_od.registry.watcher import model_reader_group_id

    def env(name: str) -> str:
        return "STREAM_OD_" + name.upper()

    needs = [
        Need("topic", settings.input_topic, "READ", env("input_topic")),
        Need("group", settings.group_id, "READ", env("group_id")),
        *(
            Need("topic", topic, "WRITE", env(name))
            for name, topic in settings.written_topics().items()
        ),
    ]
    if settings.model_source == "topic":
        needs += [
            Need("topic", settings.model_topic, "READ", env("model_topic")),
            Need(
                "group", model_reader_group_id(settings), "DESCRIBE", env("model_reader_group_id")
            ),
        ]
    if settings.suppress_window_s > 0:  # created at the first assignment when missing
        needs += [
            Need(
                "topic",
                settings.suppression_changelog_topic,
                operation,
                env("suppression_changelog_topic"),
                may_be_missing=True,
            )
            for operation in ("READ", "WRITE")
        ]
    if _restores_state(settings):
        needs.append(_restore_need(settings))
    admin = check_access(settings.client_config({}), needs)
    return _check_outputs(admin, settings)


def _check_outputs(admin, settings):
    """The output topics' settings that would stop a partition (stream_od.kafka.topic_settings):
    a compacted topic or one whose max.message.bytes is below max_output_bytes is refused
    (ConfigError naming each); the producer's batches are sized to the smallest limit; a
    windows stage topic's timestamp limits are returned for its stamps to be clamped into.
    Without DESCRIBE_CONFIGS nothing is checked, and a warning says so."""
    from confluent_kafka import KafkaException

    from stream_od.errors import ConfigError
    from stream_od.kafka import topic_settings
    from stream_od.kafka.topics import reason

    written = settings.written_topics()
    try:
        configs = topic_settings.read_configs(admin, written.values())
    except KafkaException as exc:
        log.warning(
            "cannot read the output topics' settings (%s): cleanup.policy, max.message.bytes "
            "and timestamp limits not checked; grant DESCRIBE_CONFIGS on them to have them "
            "checked at start (docs/security.md)",
            reason(exc.args[0]),
        )
        return settings, None
    problems = topic_settings.problems(configs, written, settings.max_output_bytes)
    if problems:
        raise ConfigError("; ".join(problems))
    configured = settings.producer.get("batch.size")
    size = topic_settings.batch_size(
        configs, written.values(), None if configured is None else int(configured)
    )
    if size is not None:
        log.info("producer batch.size %d: the smallest max.message.bytes of the outputs", size)
        settings = settings.model_copy(
            update={"producer": {**settings.producer, "batch.size": size}}
        )
    stage = settings.windows_stage_topic
    window = topic_settings.StampWindow.of(configs[stage]) if stage is not None else None
    if window is not None:
        log.info(
            "topic %r takes timestamps from %d ms before to %d ms after the broker's clock: "
            "input timestamps outside are moved inside",
            stage,
            window.before_ms,
            window.after_ms,
        )
    return settings, window


def _first_model(settings, metrics):
    """The model to start with and, for a registry source, the watcher that will swap it."""
    from confluent_kafka import KafkaException

    from stream_od.errors import ConfigError
    from stream_od.registry import Refused, RegistryError
    from stream_od.registry.signing import trust_from_settings
    from stream_od.registry.verify import load_verified
    from stream_od.registry.watcher import ModelWatcher, source_from_settings
    from stream_od.scorer import Scorer

    key = trust_from_settings(settings)  # Ed25519 public key, or the older HMAC key, or none
    if not key.signed:
        log.warning(
            "no model verification key (STREAM_OD_MODEL_PUBLIC_KEY_FILE): artifacts are "
            "checked against their sha256 manifest only, not for who published them"
        )
    source = source_from_settings(settings)
    if source is None:
        try:
            return load_verified(settings.artifact_path, key), None
        except Refused as exc:
            raise ConfigError(
                f"cannot load the model (artifact_path / STREAM_OD_ARTIFACT_PATH="
                f"{settings.artifact_path}): {exc}"
            ) from exc
    watcher = ModelWatcher(
        source,
        key=key,
        metrics=metrics,
        accept=lambda art: Scorer.build(art, settings),
        interval_s=settings.model_poll_interval_s,
    )
    try:
        model = watcher.poll_once()
    except (RegistryError, KafkaException) as exc:
        source.close()
        raise ConfigError(f"cannot read the model registry ({source!r}): {exc}") from exc
    if model is None:
        source.close()
        raise ConfigError(
            f"no usable model in {source!r} (model_source={settings.model_source}):"
            " publish one with `stream-od publish` (see docs/registry.md)"
        )
    return model, watcher
