"""Read the operations stack (compose, Kubernetes, Prometheus, Grafana, Dockerfile) for the tests.

Small, dependency-free readers for what the deploy tests compare: the metric names a PromQL
expression selects, the series a Prometheus exposition offers, environment variables each file
sets, Compose's ``${VAR:-default}`` interpolation, and the topics a setup script creates.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from stream_od.config import ENV_PREFIX

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
K8S = REPO / "deploy" / "k8s"
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "stream-od.json"
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
KAFKA_POM = REPO / "deploy" / "kafka" / "pom.xml"
OPERATE_DOC = REPO / "docs" / "operate.md"

WORKER_JOB = "stream-od-worker"  # Prometheus job name of the workers, in every setup
EXPORTER_JOB = "kafka-exporter"  # Prometheus job name of the broker-side lag exporter
WORKER_RULES = PROMETHEUS / "rules" / "stream-od.yml"  # rules on the workers' own series
BROKER_RULES = PROMETHEUS / "rules" / "kafka-exporter.yml"  # rules on the exporter's series
# kafka_exporter's consumer-group series and their labels, as its README documents them
# (danielqsj/kafka_exporter, "Metrics": Consumer Groups). It cannot be fetched or run here
# (not served by the Go proxy this machine reaches), so its names are checked against these.
KAFKA_EXPORTER_SERIES = {
    "kafka_consumergroup_current_offset": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_current_offset_sum": {"consumergroup", "topic"},
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_lag_sum": {"consumergroup", "topic"},
    "kafka_consumergroup_members": {"consumergroup"},
}
STREAM_OD_IMAGES = ("stream-od", "stream-od-trainer")  # image names (before the tag) of ours

# Environment variables a stream-od container may carry that are not WorkerSettings fields.
DOCUMENTED_NON_SETTINGS = frozenset(
    {
        "STREAM_OD_CONFIG_FILE",  # names the settings file (stream_od.config.CONFIG_FILE_ENV)
        # The publisher's Ed25519 key (trainer, stream-od publish: stream_od.registry.keys), which
        # no worker may hold; tests/deploy checks that only the trainers carry it.
        "STREAM_OD_MODEL_PRIVATE_KEY",
        "STREAM_OD_MODEL_PRIVATE_KEY_FILE",
        "KERAS_BACKEND",
        "KERAS_HOME",
        "TF_CPP_MIN_LOG_LEVEL",  # Keras and TensorFlow
        "MPLCONFIGDIR",  # matplotlib (the trainer's report plots)
        "PATH",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",  # the interpreter
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_NO_CACHE_DIR",  # the image's build stage
    }
)

# Series Prometheus makes itself for every target.
PROMETHEUS_BUILTINS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)


# --------------------------------------------------------------------------- files


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@cache
def compose() -> dict:
    """docker-compose.yml with Compose's interpolation applied, every variable unset: the stack
    needs none (its keys are files, see :func:`compose_secret_files`)."""
    return interpolate(load_yaml(COMPOSE), {})


@cache
def k8s_objects() -> tuple[dict, ...]:
    """Every object of the kustomization's resources, in order."""
    kust = load_yaml(K8S / "kustomization.yaml")
    out: list[dict] = []
    for name in kust["resources"]:
        out.extend(load_yaml_all(K8S / name))
    return tuple(out)


def k8s_one(kind: str, name: str | None = None) -> dict:
    found = [
        o
        for o in k8s_objects()
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def pod_templates() -> Iterator[tuple[dict, dict]]:
    """``(object, pod spec)`` of every workload in deploy/k8s."""
    for obj in k8s_objects():
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, spec["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj, spec["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj, spec


def containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


# --------------------------------------------------------------------------- key files

# Settings that hold a model signing key itself, in the environment: none of the stack's.
KEY_VALUE_SETTINGS = (
    "STREAM_OD_MODEL_PRIVATE_KEY",
    "STREAM_OD_MODEL_PUBLIC_KEY",
    "STREAM_OD_MODEL_SIGNING_KEY",
)


def compose_secret_files(service: dict) -> dict[str, str]:
    """``{path in the container: file on the host, as written}`` for each secret a compose
    service mounts (Compose puts a secret without an absolute target under /run/secrets/)."""
    defined = compose().get("secrets") or {}
    out = {}
    for entry in service.get("secrets") or []:
        source, target = (
            (entry, None) if isinstance(entry, str) else (entry["source"], entry.get("target"))
        )
        assert source in defined, f"secret {source} is not defined at the top level"
        assert "file" in defined[source], f"secret {source} is not a file: {defined[source]}"
        target = target or source
        out[target if target.startswith("/") else "/run/secrets/" + target] = defined[source][
            "file"
        ]
    return out


def k8s_mounted_files(pod_spec: dict, container: dict) -> dict[str, tuple[str, str, str]]:
    """``{path in the container: (kind, object name, key)}`` for each file a container mounts
    from a Secret or ConfigMap volume. The volumes must list their ``items``, so that each
    file's path is known without the object (created out of band)."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    out = {}
    for m in container.get("volumeMounts", []):
        vol = volumes[m["name"]]
        if "secret" in vol:
            kind, ref, name = "Secret", vol["secret"], vol["secret"]["secretName"]
        elif "configMap" in vol:
            kind, ref, name = "ConfigMap", vol["configMap"], vol["configMap"]["name"]
        else:
            continue
        assert ref.get("items"), f"volume {m['name']}: list its items (the files it holds)"
        for item in ref["items"]:
            if m.get("subPath") is None:
                out[posixpath.join(m["mountPath"], item["path"])] = (kind, name, item["key"])
            elif m["subPath"] == item["path"]:
                out[m["mountPath"]] = (kind, name, item["key"])
    return out


def with_key_files(env: dict[str, str], files: dict[str, str], key_dir: Path) -> dict[str, str]:
    """``env`` as a test can load it: each ``*_KEY_FILE`` setting that names a path the
    container mounts (``files``: ``{path: file name}``) now names the file of that name in
    ``key_dir``, where the test put a real key pair. A setting that names a path nothing mounts
    fails the test: the container would not find its key."""
    out = dict(env)
    for name, value in env.items():
        if name.startswith("STREAM_OD_MODEL_") and name.endswith("_KEY_FILE"):
            assert value in files, f"{name}={value}: nothing is mounted there ({sorted(files)})"
            out[name] = str(key_dir / files[value])
    return out


def compose_key_env(service: dict, key_dir: Path) -> dict[str, str]:
    """A compose service's environment, its key files taken from ``key_dir`` by name."""
    files = {path: posixpath.basename(src) for path, src in compose_secret_files(service).items()}
    return with_key_files(env_mapping(service.get("environment")), files, key_dir)


def key_check_code(script: str) -> str:
    """The Python a trainer's shell script runs (``python -c '...'``) to read its private key
    before it trains."""
    found = re.findall(r"python -c '([^']*private_key_from_env[^']*)'", script)
    assert len(found) == 1, "the trainer does not check its private key before training"
    return found[0]


def check_key_check(code: str, key_dir: Path) -> None:
    """A trainer's key check (:func:`key_check_code`), run as its container runs it, passes
    with the private key and stops, naming the setting, without it or with the public key in
    its place."""
    from stream_od.registry import keys

    def run(key_file: Path | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_OD_")}
        if key_file is not None:
            env[keys.PRIVATE_KEY_ENV + keys.FILE_SUFFIX] = str(key_file)
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    ok = run(key_dir / keys.PRIVATE_KEY_FILE)
    assert ok.returncode == 0, ok.stderr
    setting = keys.PRIVATE_KEY_ENV + keys.FILE_SUFFIX
    for key_file, why in (
        (None, "is not set"),
        (key_dir / "missing.key", "cannot read"),
        (key_dir / keys.PUBLIC_KEY_FILE, "not an unencrypted Ed25519 private"),
    ):
        bad = run(key_file)
        assert bad.returncode != 0, f"the key check passed with {key_file}"
        assert setting in bad.stderr and why in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr, bad.stderr


def runs_stream_od(image: str) -> bool:
    base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return base in STREAM_OD_IMAGES


@cache
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict]:
    """Every panel, rows' collapsed children included, rows themselves excluded."""
    out = []
    for p in dashboard()["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    """``(where, PromQL)`` for every panel target and every query variable."""
    out = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"])
        for p in dashboard_panels()
        for t in p.get("targets", [])
    ]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
            assert m, f"variable {var['name']}: expected label_values(selector, label), got {q!r}"
            out.append((f"variable {var['name']!r}", m.group(1)))
    return out


def rule_files() -> tuple[Path, ...]:
    """The rules on the workers' own series (the broker-side ones: :data:`BROKER_RULES`)."""
    return (WORKER_RULES,)


def alert_rules(files: tuple[Path, ...] | None = None) -> list[dict]:
    files = rule_files() if files is None else files
    return [r for f in files for g in load_yaml(f)["groups"] for r in g["rules"]]


def rule_exprs(files: tuple[Path, ...] | None = None) -> list[tuple[str, str]]:
    return [
        (f"rule {r.get('alert') or r.get('record')}", str(r["expr"])) for r in alert_rules(files)
    ]


# --------------------------------------------------------------------------- PromQL

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    }
)


def _grafana_vars(expr: str) -> str:
    # Grafana's interval variables stand for durations; the others only occur inside strings.
    return re.sub(r"\$\{?__\w+\}?", "1m", expr)


def _check_balanced(expr: str) -> None:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in _STRING.sub('""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                raise ValueError(f"unbalanced {ch!r} in {expr!r}")
    if stack:
        raise ValueError(f"unclosed {stack[-1]!r} in {expr!r}")


def promql_metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (``foo`` in ``rate(foo{a="b"}[5m])``).

    Strings, label matchers, ranges and grouping clauses are removed first; what is left that
    looks like an identifier and is not a function call or keyword is a metric name. Also
    handles ``{__name__="foo"}``.
    """
    expr = _grafana_vars(expr)
    _check_balanced(expr)
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    for m in _IDENT.finditer(text):
        name = m.group(1)
        after = text[m.end() :].lstrip()
        if after.startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def promql_label_names(expr: str) -> set[str]:
    """Label names an expression groups or matches on (``by (a)``, ``{b="x"}``, ``on (c)``)."""
    expr = _grafana_vars(expr)
    text = _STRING.sub('""', expr)
    labels = set()
    for m in _GROUPING.finditer(text):
        labels.update(x.strip() for x in m.group(2).split(",") if x.strip())
    for m in re.finditer(r"\{([^{}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(1)))
    labels.discard("__name__")
    return labels


# --------------------------------------------------------------------------- exposition


def exposition_series(text: str) -> dict[str, str]:
    """``{series name: family type}`` of a Prometheus or OpenMetrics text exposition.

    A histogram ``h`` offers ``h_bucket``, ``h_sum`` and ``h_count`` but no ``h``; a counter
    ``c`` offers ``c_total``; an info ``i`` offers ``i_info``. Families with no sample yet (a
    labelled counter before its first increment) are included from their ``# TYPE`` line.
    """
    out: dict[str, str] = {}
    families: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            kind = kind.strip()
            families[name] = kind
            if kind == "counter":
                out[name if name.endswith("_total") else name + "_total"] = kind
            elif kind == "histogram":
                out.update({f"{name}_{s}": kind for s in ("bucket", "sum", "count")})
            elif kind == "gaugehistogram":
                out.update({f"{name}_{s}": kind for s in ("bucket", "gsum", "gcount")})
            elif kind == "summary":
                out.update({name: kind, f"{name}_sum": kind, f"{name}_count": kind})
            elif kind == "info":
                out[name if name.endswith("_info") else name + "_info"] = kind
            else:
                out[name] = kind
        elif line and not line.startswith("#"):
            name = re.match(r"[A-Za-z_:][\w:]*", line).group(0)
            if name not in out:
                family = next((f for f in families if name.startswith(f)), None)
                out[name] = families.get(family, "untyped")
    return out


def metric_families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


# --------------------------------------------------------------------------- env, shell

_VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?+])([^}]*))?\}|\$(\w+)")


def interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    """Compose's variable interpolation on every string of a loaded YAML document."""
    env = env or {}
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            if current is None or (op == ":-" and current == ""):
                return arg
        if op in (":?", "?") and not current:
            raise ValueError(f"${{{name}}} is required: {arg}")
        return current or ""

    return _VAR.sub(sub, value)


def env_mapping(environment: Any) -> dict[str, str]:
    """Compose's ``environment`` in either form (mapping or ``KEY=value`` list)."""
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {str(k): "" if v is None else str(v) for k, v in environment.items()}
    out = {}
    for item in environment:
        key, _, val = str(item).partition("=")
        out[key] = val
    return out


def shell_expand(word: str, env: dict[str, str]) -> str:
    """``$VAR`` / ``${VAR}`` in one shell word, quotes removed."""
    word = word.strip().strip('"').strip("'")
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], word)


def created_topics(script: str, env: dict[str, str] | None = None) -> dict[str, int]:
    """``{topic: partitions}`` created by a setup script's ``create TOPIC PARTITIONS`` lines."""
    env = env or {}
    out = {}
    for m in re.finditer(r"^\s*create\s+(\S+)\s+(\d+)\b", script, re.M):
        out[shell_expand(m.group(1), env)] = int(m.group(2))
    return out


def created_topic_configs(
    script: str, env: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """``{topic: {config: value}}`` from the ``KEY=VALUE`` words after
    ``create TOPIC PARTITIONS``."""
    env = env or {}
    out = {}
    for m in re.finditer(r"^\s*create\s+(\S+)\s+\d+((?:[ \t]+\S+=\S+)*)[ \t]*$", script, re.M):
        out[shell_expand(m.group(1), env)] = dict(w.split("=", 1) for w in m.group(2).split())
    return out


def check_models_topic(
    partitions: dict[str, int],
    configs: dict[str, dict[str, str]],
    topic: str,
    *,
    broker_message_max_bytes: int | None = None,
) -> None:
    """The models topic as a setup script creates it suits the registry (docs/registry.md)."""
    from stream_od.registry.pack import MAX_PACKED_BYTES
    from stream_od.registry.topic import MESSAGE_BYTES

    assert topic in partitions, f"the models topic {topic} is not created"
    assert partitions[topic] == 1, (
        "a models topic needs exactly one partition (offsets order versions)"
    )
    cfg = configs.get(topic, {})
    assert cfg.get("cleanup.policy") == "compact", f"{topic}: {cfg}"
    size = int(cfg.get("max.message.bytes", 0))
    # What `stream-od publish` itself would create: room for an artifact at the limit.
    assert size >= MESSAGE_BYTES > MAX_PACKED_BYTES, f"{topic}: max.message.bytes {size}"
    assert "retention.ms" not in cfg and "delete" not in cfg.get("cleanup.policy", ""), cfg
    if broker_message_max_bytes is not None:
        assert broker_message_max_bytes >= MESSAGE_BYTES


def flat_commands(text: str) -> str:
    """``text`` with comment marks dropped, shell line continuations joined and every run of
    white space made one space, so that a command can be looked for as one line."""
    text = re.sub(r"^\s*#", " ", text, flags=re.M)
    return " ".join(text.replace("\\\n", " ").split())


def stream_od_invocations(script: str) -> list[list[str]]:
    """Argument lists of every ``stream-od ...`` command in a shell script (no leading name)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("stream-od "):
            out.append(shlex.split(line)[1:])
    return out


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def dockerfile_env(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        if line.upper().startswith("ENV "):
            rest = line[4:].strip()
            if "=" in rest.split()[0]:
                for word in shlex.split(rest):
                    k, _, v = word.partition("=")
                    out[k] = v
            else:
                k, v = rest.split(None, 1)
                out[k] = v
    return out


def kafka_sh_properties() -> dict[str, str]:
    """The server.properties the local broker script writes (``$PORT`` etc. left unexpanded)."""
    text = KAFKA_SH.read_text()
    body = re.search(r"<<EOF\n(.*?)\nEOF", text, re.S).group(1)
    props = {}
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            props[k.strip()] = v.strip()
    return props


def kafka_version() -> str:
    return re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text()).group(1)


def duration_s(value: Any) -> float:
    """Compose / Go durations: ``45s``, ``1m30s``, ``500ms``; a bare number is seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    total, pos = 0.0, 0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value):
        assert m.start() == pos, f"bad duration {value!r}"
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    assert pos == len(value) and pos > 0, f"bad duration {value!r}"
    return total


def clean_environ(monkeypatch, env: dict[str, str]) -> None:
    """The process environment as the container's: its ``STREAM_OD_*`` variables only."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(
                key,
                value.replace("<STREAM_OD_INSTANCE_ID from valueFrom>", "stream-od-worker-abc12"),
            )
