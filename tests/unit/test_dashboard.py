"""The Grafana dashboard (roles/prometheus/files/ollama-fleet-dashboard.json) is importable as is
(plain JSON, a data-source input, unique panel ids) and every panel's query names only metrics
that something in the fleet produces: the nodes' probe script, the golden result ollama_verify
writes, keepalived's notify script, the
alert rules, node exporter, HAProxy's exporter or Prometheus itself; so does every alert rule."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "roles" / "prometheus" / "files" / "ollama-fleet-dashboard.json"

# HAProxy's exporter (haproxy_<scope>_<field>): the fields checked in Debian 12's haproxy 2.6 binary.
HAPROXY = {"haproxy_server_http_responses_total", "haproxy_server_current_sessions", "haproxy_server_status",
           "haproxy_server_check_status", "haproxy_backend_current_queue"}
# node exporter's own (the systemd collector is enabled by roles/node_exporter) and Prometheus'.
OTHERS = {"up", "node_systemd_unit_state", "ALERTS"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def produced() -> set[str]:
    script = (ROOT / "roles/ollama_metrics/files/ollama_metrics.py").read_text()
    notify = (ROOT / "roles/keepalived/templates/keepalived-state-metric.j2").read_text()
    rules = (ROOT / "roles/prometheus/templates/ollama-fleet.rules.yml.j2").read_text()
    golden = (ROOT / "plugins/module_utils/golden.py").read_text()  # ollama_verify's golden textfile
    names = set(re.findall(r'"(ollama_[a-z_]+)"', script + golden)) | set(re.findall(r"\b(keepalived_vrrp_[a-z_]+)\{", notify))
    names |= set(re.findall(r"^\s*- record: (\S+)", rules, re.M))
    return names | HAPROXY | OTHERS


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label
    names or values, durations or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)      # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)               # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()
        if following.startswith("(") or match.group(0) in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_dashboard_is_importable_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}" and panel["targets"], panel["title"]


def test_metric_names_parser():
    assert metric_names('sum by (server) (rate(haproxy_server_http_responses_total{proxy="a", code="5xx"}[5m]))') == \
        {"haproxy_server_http_responses_total"}
    assert metric_names("ollama_gpu_memory_used_bytes / ollama_gpu_memory_total_bytes") == \
        {"ollama_gpu_memory_used_bytes", "ollama_gpu_memory_total_bytes"}
    assert metric_names("keepalived_vrrp_master == 1") == {"keepalived_vrrp_master"}


@pytest.mark.parametrize("panel", [p for p in panels(json.loads(DASHBOARD.read_text())) if p["type"] != "row"],
                         ids=lambda p: p["title"])
def test_every_query_reads_a_produced_metric(panel):
    known = produced()
    for target in panel["targets"]:
        names = metric_names(target["expr"])
        assert names, target["expr"]
        assert names <= known, f"{panel['title']}: {sorted(names - known)} is made by nothing in the fleet"


def test_the_issue_asks_for_these_panels():
    titles = " | ".join(p["title"].lower() for p in panels(json.loads(DASHBOARD.read_text())))
    for word in ("first visible token", "requests", "errors", "queue", "gpu memory", "version", "sessions per server", "virtual ip"):
        assert word in titles, word


def test_every_alert_rule_reads_a_produced_metric():
    text = (ROOT / "roles/prometheus/templates/ollama-fleet.rules.yml.j2").read_text()
    rules = yaml.safe_load(re.sub(r"\[\[[^\]]*\]\]", "1", text))["groups"][0]["rules"]
    known = produced()
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names and names <= known, f"{rule.get('alert')}: {sorted(names - known)} is made by nothing in the fleet"
