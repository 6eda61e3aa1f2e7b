"""The fleet's alerts, proven through Prometheus' HTTP API (/api/v1/query, /api/v1/alerts), never
its logs. Prometheus runs on the scenario's monitoring host (mon-lb1) as site.yml deploys it; the
scenario's host_vars shorten its intervals and alert times through the role's documented
variables. Traffic goes only to this scenario's containers. The nodes run the ollama STAND-IN
(tests/ollama_standin, a test double of Ollama, not Ollama).

The tests run in order, each from the state the one before left:
1. every target is scraped and up, the rules are loaded, the probe reports both nodes answering
   fast, and exactly one load balancer is VRRP master;
2. control: on the healthy fleet no alert is firing;
3. node down: Ollama killed on one node -> OllamaNodeOutOfRotation (its HAProxy state) fires for
   that node, and not for the other, within HAProxy's detection + `for:` + one scrape + two
   evaluations + slack; OllamaApiDown (the node's own probe) fires too; restarted, both resolve;
4. slow first token: the stand-in's first token delayed to 3 s on one node -> the probe measures
   it and OllamaFirstTokenSlow fires for that node, and not for the other, within one probe
   interval + the probe + two scrapes + `for:` + two evaluations + slack; restored, it resolves
   once the slow samples leave the p95 window.
Each firing and resolving time is printed beside its bound (run with -s).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import time

import httpx
import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import LBS, NODES, ROOT, standin, sudo  # noqa: E402

INVENTORY = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"])


def host_vars(name: str) -> dict:
    return yaml.safe_load((INVENTORY.parent / "host_vars" / f"{name}.yml").read_text()) or {}


def role_defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}


def seconds(duration: str | int | float) -> float:
    """Seconds of a Prometheus (30s, 1m) or HAProxy (2s, 500ms) duration."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration)):
        total += float(number) * units[unit]
    return total if total else float(duration)


def setting(hv: dict, role: str, name: str):
    """The scenario's host_vars value of a role variable, else the role's default."""
    return hv[name] if name in hv else role_defaults(role)[name]


MONITOR = sorted((yaml.safe_load(INVENTORY.read_text()).get("monitoring_nodes") or {}).get("hosts") or {})[0]
PROM_VARS = host_vars(MONITOR)
testinfra_hosts = [f"ansible://{MONITOR}"]
PROMETHEUS = f"http://{PROM_VARS['ansible_host']}:{setting(PROM_VARS, 'prometheus', 'prometheus_port')}"
SCRAPE_S = float(setting(PROM_VARS, "prometheus", "prometheus_scrape_interval_s"))
EVAL_S = float(setting(PROM_VARS, "prometheus", "prometheus_evaluation_interval_s"))
DOWN_FOR_S = seconds(setting(PROM_VARS, "prometheus", "prometheus_alert_down_for"))
TTFT_FOR_S = seconds(setting(PROM_VARS, "prometheus", "prometheus_alert_ttft_for"))
TTFT_WINDOW_S = seconds(setting(PROM_VARS, "prometheus", "prometheus_alert_ttft_window"))
NODE, OTHER = sorted(NODES)
NODE_VARS = host_vars(NODE)
PROBE_INTERVAL_S = float(setting(NODE_VARS, "ollama_metrics", "ollama_metrics_interval_s"))
PROBE_TIMEOUT_S = float(setting(NODE_VARS, "ollama_metrics", "ollama_metrics_timeout_s"))
HAPROXY = role_defaults("haproxy")
CHECK_S = seconds(HAPROXY["haproxy_check_interval"])
FALL, RISE = int(HAPROXY["haproxy_check_fall"]), int(HAPROXY["haproxy_check_rise"])
# The deploy gate's limit, which the rules take: the production example sets it once,
# fleet_first_token_s, and hands it to ollama_verify_ttft_p95_s and prometheus_alert_ttft_p95_s.
TTFT_LIMIT_S = float(yaml.safe_load((ROOT / "inventories/production/group_vars/all.yml").read_text())["fleet_first_token_s"])
SLOW_MS = 3000
# Scheduling on a loaded 2-core machine (timers, SSH round trips, the poll itself).
SLACK_S = 10.0

# The bounds the alerts must meet, from the settings above (not from the measurements):
# HAProxy marks the node DOWN after FALL failed checks, the next scrape sees it, the next
# evaluation makes the alert pending, `for:` later (rounded up to an evaluation) it fires.
NODE_DOWN_FIRE_S = (FALL + 1) * CHECK_S + SCRAPE_S + DOWN_FOR_S + 2 * EVAL_S + SLACK_S
# The probe notices at its next run (at most one interval, then its timeout), then as above.
API_DOWN_FIRE_S = PROBE_INTERVAL_S + PROBE_TIMEOUT_S + SCRAPE_S + DOWN_FOR_S + 2 * EVAL_S + SLACK_S
# Back: RISE good checks and the next probe, then one scrape and one evaluation.
NODE_UP_RESOLVE_S = max((RISE + 1) * CHECK_S, PROBE_INTERVAL_S + PROBE_TIMEOUT_S) + SCRAPE_S + 2 * EVAL_S + SLACK_S
# The next probe measures 3 s; two scrapes of it put the window's p95 over the limit.
TTFT_FIRE_S = PROBE_INTERVAL_S + SLOW_MS / 1000 + PROBE_TIMEOUT_S + 2 * SCRAPE_S + TTFT_FOR_S + 2 * EVAL_S + SLACK_S
# The next probe is fast again; the slow samples then leave the window.
TTFT_RESOLVE_S = PROBE_INTERVAL_S + PROBE_TIMEOUT_S + TTFT_WINDOW_S + SCRAPE_S + 2 * EVAL_S + SLACK_S


def api(path: str, **params) -> dict | list:
    response = httpx.get(f"{PROMETHEUS}{path}", params=params, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def query(expr: str) -> dict[str, float]:
    """Instant query: {instance or server label: value}."""
    return {r["metric"].get("instance") or r["metric"].get("server", ""): float(r["value"][1])
            for r in api("/api/v1/query", query=expr)["result"]}


def alerts(name: str, state: str | None = None) -> list[dict]:
    """Active alerts (pending or firing) called `name`, optionally in one state."""
    return [a for a in api("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == name and (state is None or a["state"] == state)]


def alert_on(name: str, host: str, state: str | None = None) -> bool:
    return any(host in (a["labels"].get("instance"), a["labels"].get("server")) for a in alerts(name, state))


def wait_for(predicate, timeout: float, what: str) -> float:
    """Seconds until predicate() is true, polled every 0.5 s; fails after timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s; active alerts: {api('/api/v1/alerts')['alerts']}")


def report(what: str, took: float, bound: float) -> None:
    print(f"\n{what}: {took:.1f} s (bound {bound:.0f} s)")


def test_prometheus_scrapes_the_fleet_and_loads_the_rules():
    everyone = set(LBS) | set(NODES)
    # Right after the converge the first scrapes may still be due.
    wait_for(lambda: query('up{job="node"}') == {h: 1.0 for h in everyone}, 60, "node exporter up on every host")
    wait_for(lambda: query('up{job="haproxy"}') == {h: 1.0 for h in LBS}, 60, "HAProxy's exporter up on every load balancer")
    rules = {r["name"] for g in api("/api/v1/rules")["groups"] if g["name"] == "ollama-fleet" for r in g["rules"]}
    assert {"OllamaNodeOutOfRotation", "OllamaApiDown", "OllamaFirstTokenSlow", "VrrpNoMaster"} <= rules, rules
    # The nodes' own probe has run and measured a fast first token on both.
    wait_for(lambda: query("ollama_up") == {n: 1.0 for n in NODES}, PROBE_INTERVAL_S + 30, "both probes report ollama_up 1")
    first_token = query("ollama_probe_first_token_seconds")
    assert set(first_token) == set(NODES) and all(v < TTFT_LIMIT_S for v in first_token.values()), first_token
    # keepalived's notify script: exactly one load balancer holds the virtual IP.
    masters = [float(r["value"][1]) for r in api("/api/v1/query", query="sum by (vrrp_instance) (keepalived_vrrp_master)")["result"]]
    assert masters == [1.0], masters


def test_control_no_alert_fires_on_the_healthy_fleet():
    firing = [a["labels"] for a in api("/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    assert firing == [], firing


def test_node_down_fires_then_resolves():
    assert not alert_on("OllamaNodeOutOfRotation", NODE) and not alert_on("OllamaApiDown", NODE)
    try:
        sudo(NODE, "systemctl kill -s KILL ollama; systemctl stop ollama")
        killed = time.monotonic()
        fired = wait_for(lambda: alert_on("OllamaNodeOutOfRotation", NODE, "firing"), NODE_DOWN_FIRE_S + 30,
                         f"OllamaNodeOutOfRotation firing for {NODE}")
        report(f"OllamaNodeOutOfRotation firing for {NODE} after the kill", fired, NODE_DOWN_FIRE_S)
        assert fired <= NODE_DOWN_FIRE_S
        assert not alert_on("OllamaNodeOutOfRotation", OTHER), f"{OTHER} serves: it must not be reported out of rotation"
        wait_for(lambda: alert_on("OllamaApiDown", NODE, "firing"), API_DOWN_FIRE_S + 30, f"OllamaApiDown firing for {NODE}")
        api_down = time.monotonic() - killed
        report(f"OllamaApiDown (the node's own probe) firing for {NODE} after the kill", api_down, API_DOWN_FIRE_S)
        assert api_down <= API_DOWN_FIRE_S
    finally:
        sudo(NODE, "systemctl start ollama")
    restarted = time.monotonic()
    wait_for(lambda: not alert_on("OllamaNodeOutOfRotation", NODE) and not alert_on("OllamaApiDown", NODE),
             NODE_UP_RESOLVE_S + 30, f"the node-down alerts of {NODE} resolved")
    resolved = time.monotonic() - restarted
    report(f"OllamaNodeOutOfRotation and OllamaApiDown resolved for {NODE} after the restart", resolved, NODE_UP_RESOLVE_S)
    assert resolved <= NODE_UP_RESOLVE_S


@pytest.fixture
def slow_node():
    standin(NODE, first_token_ms=SLOW_MS)
    yield
    standin(NODE)


def test_slow_first_token_fires_then_resolves(slow_node):
    assert not alert_on("OllamaFirstTokenSlow", NODE)
    slowed = time.monotonic()
    fired = wait_for(lambda: alert_on("OllamaFirstTokenSlow", NODE, "firing"), TTFT_FIRE_S + 30,
                     f"OllamaFirstTokenSlow firing for {NODE}")
    report(f"OllamaFirstTokenSlow firing for {NODE} after its first token was slowed to {SLOW_MS} ms", fired, TTFT_FIRE_S)
    assert fired <= TTFT_FIRE_S
    # What fired it is the probe's measurement: the 3 s the stand-in waits, on that node only.
    measured = query("ollama_probe_first_token_seconds")
    assert measured[NODE] >= SLOW_MS / 1000 * 0.95 and measured[OTHER] < TTFT_LIMIT_S, measured
    assert not alert_on("OllamaFirstTokenSlow", OTHER)

    standin(NODE)
    restored = time.monotonic() - slowed
    wait_for(lambda: not alert_on("OllamaFirstTokenSlow", NODE), TTFT_RESOLVE_S + 30, f"OllamaFirstTokenSlow resolved for {NODE}")
    resolved = time.monotonic() - slowed - restored
    report(f"OllamaFirstTokenSlow resolved for {NODE} after its first token was restored", resolved, TTFT_RESOLVE_S)
    assert resolved <= TTFT_RESOLVE_S
    assert query("ollama_probe_first_token_seconds")[NODE] < TTFT_LIMIT_S
