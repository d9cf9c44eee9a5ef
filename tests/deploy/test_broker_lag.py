"""Broker-side consumer-group lag (kafka_exporter) in compose and on Kubernetes, and the rules
that read it: what must still fire when every worker, and so every worker series, is gone.

The rules' behaviour is tested by promtool (deploy/prometheus/tests/kafka-exporter.test.yml,
run by test_rule_units.py). kafka_exporter itself cannot be fetched here, so its series are
checked against the names and labels its README documents (stack.KAFKA_EXPORTER_SERIES)."""

from __future__ import annotations

import re

from tests.deploy import stack

GROUP_REGEX = re.compile(r'consumergroup=~"([^"]+)"')


def broker_rules() -> list[dict]:
    return stack.alert_rules((stack.BROKER_RULES,))


def test_the_broker_rules_read_only_the_exporters_documented_series():
    exprs = stack.rule_exprs((stack.BROKER_RULES,))
    assert {name for name, _ in exprs} >= {
        "rule StreamOdGroupWithoutConsumers",
        "rule StreamOdBrokerLagGrowing",
        "rule StreamOdLagExporterDown",
    }
    for where, expr in exprs:
        names = stack.promql_metric_names(expr) - stack.PROMETHEUS_BUILTINS
        assert names <= set(stack.KAFKA_EXPORTER_SERIES), f"{where}: {names}"
        labels = set().union(*(stack.KAFKA_EXPORTER_SERIES[n] for n in names)) | {"job"}
        assert stack.promql_label_names(expr) <= labels, where
        assert set(re.findall(r'job\s*=\s*"([^"]+)"', expr)) == {stack.EXPORTER_JOB}, where
    for rule in broker_rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        used = set(re.findall(r"\$labels\.(\w+)", str(rule["annotations"])))
        assert used <= stack.promql_label_names(rule["expr"]), rule["alert"]


def _group_ids() -> set[str]:
    """Every STREAM_OD_GROUP_ID the compose file and the Kubernetes manifests set."""
    ids = {
        str(stack.env_mapping(s.get("environment", {})).get("STREAM_OD_GROUP_ID"))
        for s in stack.compose()["services"].values()
        if "STREAM_OD_GROUP_ID" in stack.env_mapping(s.get("environment", {}))
    }
    ids.add(stack.k8s_one("ConfigMap", "stream-od-config")["data"]["STREAM_OD_GROUP_ID"])
    sensor = (stack.REPO / "deploy" / "k8s-sensor" / "windows-stage-deployment.yaml").read_text()
    ids.update(re.findall(r"name: STREAM_OD_GROUP_ID\s+value: \"?([\w.-]+)", sensor))
    return ids


def test_the_rules_cover_every_group_the_deployments_use():
    ids = _group_ids()
    assert {"stream-od", "stream-od-windows", "stream-od-sensor"} <= ids
    for rule in broker_rules():
        for regex in GROUP_REGEX.findall(rule["expr"]):
            assert all(re.fullmatch(regex, g) for g in ids), (rule["alert"], regex, ids)
            assert not re.fullmatch(regex, "stream-od.models"), "models readers never commit"


def _flags(args: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in args)


def test_compose_runs_the_exporter_and_prometheus_scrapes_it():
    services = stack.compose()["services"]
    exporter = services["kafka-exporter"]
    assert re.fullmatch(r"danielqsj/kafka-exporter:v\d+\.\d+\.\d+", exporter["image"])
    assert "ports" not in exporter, "the exporter is for Prometheus on the compose network only"
    flags = _flags(exporter["command"])
    assert flags["kafka.server"] == "kafka:9092"
    assert all(re.match(flags["group.filter"], g) for g in _group_ids())
    prom = stack.load_yaml(stack.PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == stack.EXPORTER_JOB]
    port = flags["web.listen-address"].rsplit(":", 1)[1]
    assert job["static_configs"][0]["targets"] == [f"kafka-exporter:{port}"]
    assert "kafka-exporter" in services["prometheus"]["depends_on"]


def test_kubernetes_runs_the_exporter_scraped_as_its_job_and_reachable_by_prometheus_only():
    deployment = stack.k8s_one("Deployment", "stream-od-kafka-exporter")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == stack.compose()["services"]["kafka-exporter"]["image"]
    flags = _flags(container["args"])
    assert flags["kafka.server"] == "$(STREAM_OD_BOOTSTRAP_SERVERS)"
    (env,) = container["env"]
    assert env["valueFrom"]["configMapKeyRef"]["key"] == "STREAM_OD_BOOTSTRAP_SERVERS"
    assert pod["spec"]["automountServiceAccountToken"] is False
    monitor = stack.k8s_one("PodMonitor", "stream-od-kafka-exporter")["spec"]
    labels = pod["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    relabel = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
    assert relabel["job"] == stack.EXPORTER_JOB
    port = int(flags["web.listen-address"].rsplit(":", 1)[1])
    assert container["ports"] == [{"name": endpoint["port"], "containerPort": port}]
    policies = [
        p
        for p in stack.k8s_objects()
        if p["kind"] == "NetworkPolicy"
        and p["spec"]["podSelector"].get("matchLabels")
        and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]
    ingress = [r for p in policies for r in p["spec"].get("ingress", ())]
    assert [port_["port"] for r in ingress for port_ in r["ports"]] == [port]
    assert all(peer.get("podSelector") for r in ingress for peer in r["from"])
    egress = [r for p in policies for r in p["spec"].get("egress", ())]
    assert sorted(p_["port"] for r in egress for p_ in r["ports"]) == [53, 53, 9092, 9093]
