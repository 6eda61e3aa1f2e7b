"""The monitoring files as Ansible renders them from an inventory: the alert rules and the scrape
configuration pass promtool (check rules, check config), the rules fire and stay quiet as meant
(promtool test rules), the nodes' probe configuration passes the script's own check, and the
dashboard reads only metrics that the exporters, the probe, keepalived's script or the rules make."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

import promtool as promtool_helper  # tests/unit/promtool.py
import validation  # tests/unit/validation.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIGEST = "a1" * 32

INVENTORY = {"all": {"children": {
    "render": {"hosts": {"render": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}},
    "ollama_nodes": {"hosts": {"gpu01": {"ansible_host": "10.20.0.11"}, "gpu02": {"ansible_host": "10.20.0.12", "node_exporter_port": 9101}}},
    "lb_nodes": {"hosts": {"lb01": {"ansible_host": "10.20.0.21"}, "lb02": {"ansible_host": "10.20.0.22", "haproxy_prometheus_port": 8406}}},
}, "vars": {"fleet_first_token_s": 2.5, "ollama_models_cs_name": "qwen3-cs",
            "ollama_models_list": [{"name": "qwen3:4b", "digest": "sha256:" + DIGEST, "source": "registry"}]}}}


def playbook(out: pathlib.Path) -> list:
    role = ROOT / "roles"
    return [
        {"name": "Render the Prometheus files", "hosts": "render", "gather_facts": False,
         "vars_files": [str(role / "prometheus/defaults/main.yml")],
         "vars": {"prometheus_rules_file": str(out / "rules" / "ollama-fleet.rules.yml")},
         "tasks": [
             {"name": "Rules directory", "ansible.builtin.file": {"path": str(out / "rules"), "state": "directory", "mode": "0755"}},
             {"name": "Rules", "ansible.builtin.template": {"src": str(role / "prometheus/templates/ollama-fleet.rules.yml.j2"),
                                                            "dest": "{{ prometheus_rules_file }}", "mode": "0644"},
              # Handed over as the production example does (task vars: above the defaults loaded as vars_files).
              "vars": {"prometheus_alert_ttft_p95_s": "{{ fleet_first_token_s }}"}},
             {"name": "Config", "ansible.builtin.template": {"src": str(role / "prometheus/templates/prometheus.yml.j2"),
                                                             "dest": str(out / "prometheus.yml"), "mode": "0644"},
              # Task vars: above the role defaults loaded as vars_files.
              "vars": {"prometheus_alertmanagers": ["10.10.0.5:9093"]}}]},
        {"name": "Render the probe configuration of a node", "hosts": "gpu01", "gather_facts": False,
         "vars_files": [str(role / "ollama_metrics/defaults/main.yml"), str(role / "ollama_metrics/vars/main.yml")],
         "tasks": [{"name": "Probe configuration", "delegate_to": "render",
                    "ansible.builtin.template": {"src": str(role / "ollama_metrics/templates/ollama-metrics.json.j2"),
                                                 "dest": str(out / "ollama-metrics.json"), "mode": "0644"},
                    "vars": {"ollama_metrics_pinned_models": "{{ ollama_models_list }}"}}]},
    ]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("monitoring")
    run = validation.run_validation(out, INVENTORY, playbook(out), forks=2)
    report = json.loads(run.stdout[run.stdout.index("{"):])
    assert report["stats"]["render"]["failures"] == 0 and report["stats"].get("gpu01", {}).get("failures", 0) == 0, run.stdout[-3000:]
    return out


@pytest.fixture(scope="module")
def promtool() -> str:
    return promtool_helper.promtool()


def test_rules_pass_promtool(rendered, promtool):
    run = subprocess.run([promtool, "check", "rules", str(rendered / "rules" / "ollama-fleet.rules.yml")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 12 rules found" in run.stdout + run.stderr


def test_config_passes_promtool_and_lists_the_inventory(rendered, promtool):
    run = subprocess.run([promtool, "check", "config", str(rendered / "prometheus.yml")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    jobs = {job["job_name"]: {c["labels"]["instance"]: c["targets"] for c in job["static_configs"]} for job in config["scrape_configs"]}
    assert jobs["node"] == {"render": ["render:9100"], "gpu01": ["10.20.0.11:9100"], "gpu02": ["10.20.0.12:9101"],
                            "lb01": ["10.20.0.21:9100"], "lb02": ["10.20.0.22:9100"]}
    assert jobs["haproxy"] == {"lb01": ["10.20.0.21:8405"], "lb02": ["10.20.0.22:8406"]}
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.10.0.5:9093"]


def test_latency_limit_is_the_deploy_gates(rendered):
    rules = yaml.safe_load((rendered / "rules" / "ollama-fleet.rules.yml").read_text())["groups"][0]["rules"]
    slow = next(r for r in rules if r["alert"] == "OllamaFirstTokenSlow")
    assert slow["expr"].endswith("> 2.5") and slow["for"] == "5m"
    assert slow["expr"].startswith("quantile_over_time(0.95, ollama_probe_first_token_seconds[5m])")


UNIT_TESTS = """
rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ollama_probe_first_token_seconds{job="node",instance="gpu01",model="qwen3-cs:latest"}'
        values: '0.4x4 3x15'
      - series: 'ollama_probe_first_token_seconds{job="node",instance="gpu02",model="qwen3-cs:latest"}'
        values: '0.4x20'
      - series: 'haproxy_server_status{job="haproxy",instance="lb01",proxy="ollama_nodes",server="gpu01",state="UP"}'
        values: '1x4 0x10'
      - series: 'haproxy_server_status{job="haproxy",instance="lb01",proxy="ollama_nodes",server="gpu01",state="DOWN"}'
        values: '0x4 1x10'
      - series: 'keepalived_vrrp_master{job="node",instance="lb01",vrrp_instance="front"}'
        values: '1x20'
      - series: 'keepalived_vrrp_master{job="node",instance="lb02",vrrp_instance="front"}'
        values: '0x5 1x15'
      - series: 'node_systemd_unit_state{job="node",instance="lb01",name="keepalived.service",state="active",type="simple"}'
        values: '1x20'
      - series: 'node_systemd_unit_state{job="node",instance="lb02",name="keepalived.service",state="active",type="simple"}'
        values: '1x10 0x10'
      - series: 'ollama_model_vram_ratio{job="node",instance="gpu01",model="qwen3-cs:latest"}'
        values: '0.6x20'
      - series: 'ollama_gpu_count{job="node",instance="gpu01"}'
        values: '0x20'
    promql_expr_test:
      # Slow from minute 5 on: the 5-minute p95 is over 2.5 s at once, firing 5 minutes later.
      - expr: ALERTS{alertname="OllamaFirstTokenSlow"}
        eval_time: 8m
        exp_samples:
          - labels: 'ALERTS{alertname="OllamaFirstTokenSlow",alertstate="pending",instance="gpu01",job="node",model="qwen3-cs:latest",severity="warning"}'
            value: 1
      - expr: ALERTS{alertname="OllamaFirstTokenSlow"}
        eval_time: 11m
        exp_samples:
          - labels: 'ALERTS{alertname="OllamaFirstTokenSlow",alertstate="firing",instance="gpu01",job="node",model="qwen3-cs:latest",severity="warning"}'
            value: 1
      # gpu01 DOWN on lb01 from minute 4: firing after 1 minute.
      - expr: ALERTS{alertname="OllamaNodeOutOfRotation",alertstate="firing"}
        eval_time: 6m
        exp_samples:
          - labels: 'ALERTS{alertname="OllamaNodeOutOfRotation",alertstate="firing",server="gpu01",severity="critical",state="DOWN"}'
            value: 1
      # Two masters from minute 5 to 10 (both keepalived active) ...
      - expr: ALERTS{alertname="VrrpTwoMasters",alertstate="firing"}
        eval_time: 7m
        exp_samples:
          - labels: 'ALERTS{alertname="VrrpTwoMasters",alertstate="firing",severity="critical",vrrp_instance="front"}'
            value: 1
      # ... then lb02's keepalived stops: its stale MASTER file no longer counts.
      - expr: ALERTS{alertname=~"Vrrp.*"}
        eval_time: 14m
        exp_samples: []
      # A CPU-only host (no GPU) never alerts on VRAM.
      - expr: ALERTS{alertname="OllamaModelNotInVram"}
        eval_time: 15m
        exp_samples: []
"""


def test_rules_fire_and_stay_quiet_as_meant(rendered, promtool):
    tests = rendered / "rules" / "unit-tests.yml"
    tests.write_text(UNIT_TESTS.replace("RULES", "ollama-fleet.rules.yml"))
    run = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, cwd=rendered / "rules")
    assert run.returncode == 0, run.stdout + run.stderr


def test_probe_configuration_passes_the_scripts_check(rendered):
    config = json.loads((rendered / "ollama-metrics.json").read_text())
    assert config["url"] == "http://127.0.0.1:11434"  # no ollama_bind_address in this inventory: loopback
    assert config["pinned_models"] == [{"name": "qwen3:4b", "digest": "sha256:" + DIGEST}]  # no source, mirror, ...
    assert config["textfile"] == "/var/lib/prometheus/node-exporter/ollama.prom" and config["model"] == "qwen3-cs"
    run = subprocess.run(["/usr/bin/python3", str(ROOT / "roles/ollama_metrics/files/ollama_metrics.py"), "--check-config",
                          str(rendered / "ollama-metrics.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
