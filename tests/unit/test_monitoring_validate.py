"""Bad input to the monitoring roles (node_exporter, ollama_metrics, prometheus) fails their
validate entry points (argument spec + tasks/validate.yml) before any host changes, and the
message names the variable: a scrape interval of 0, an alert threshold <= 0, among others. A
monitoring network that is not a CIDR is the firewall role's input (firewall_monitoring_sources,
tests/unit/test_firewall_validate.py). One ansible-playbook run covers every case; each case is a host
of its own, on the local connection; nothing is changed."""

from __future__ import annotations

import pathlib
import sys

import pytest
import validation  # tests/unit/validation.py

DIGEST = "sha256:" + "a1" * 32

# case: (variables, text the failure must contain; None = must pass)
CASES = {
    "good": ({}, None),
    "good_all_addresses": ({"node_exporter_listen_address": "", "prometheus_listen_address": ""}, None),
    "exporter_port": ({"node_exporter_port": 0}, "node_exporter_port must be a port number"),
    "exporter_textfile_relative": ({"node_exporter_textfile_dir": "textfiles"}, "node_exporter_textfile_dir must be an absolute path"),
    "exporter_unit_name": ({"node_exporter_systemd_units": ["ollama.service", "rm -rf"]}, "node_exporter_systemd_units"),
    "scrape_interval_zero": ({"prometheus_scrape_interval_s": 0}, "prometheus_scrape_interval_s (0)"),
    "evaluation_interval_zero": ({"prometheus_evaluation_interval_s": 0}, "prometheus_evaluation_interval_s (0)"),
    "ttft_limit_zero": ({"prometheus_alert_ttft_p95_s": 0}, "prometheus_alert_ttft_p95_s (0)"),
    "ttft_limit_negative": ({"prometheus_alert_ttft_p95_s": -1}, "prometheus_alert_ttft_p95_s (-1"),
    "queue_max_zero": ({"prometheus_alert_queue_max": 0}, "prometheus_alert_queue_max (0"),
    "vram_ratio_zero": ({"prometheus_alert_vram_ratio_min": 0}, "prometheus_alert_vram_ratio_min (0"),
    "vram_ratio_over_one": ({"prometheus_alert_vram_ratio_min": 1.5}, "prometheus_alert_vram_ratio_min (1.5"),
    "stale_zero": ({"prometheus_alert_probe_stale_s": 0}, "prometheus_alert_probe_stale_s (0)"),
    "bad_duration": ({"prometheus_alert_ttft_for": "five minutes"}, "prometheus_alert_ttft_for must be a Prometheus duration"),
    "bad_ttft_window": ({"prometheus_alert_ttft_window": "5"}, "prometheus_alert_ttft_window must be a Prometheus duration"),
    "bad_retention": ({"prometheus_retention": "15 days"}, "prometheus_retention must be a Prometheus duration"),
    "bad_interval_type": ({"prometheus_scrape_interval_s": "often"}, "prometheus_scrape_interval_s"),
    "no_target_group": ({"prometheus_node_group": "nosuchgroup"}, "prometheus_node_group (nosuchgroup)"),
    "bad_alertmanager": ({"prometheus_alertmanagers": ["alertmanager.example"]}, "prometheus_alertmanagers entry be host:port"),
    "probe_interval_zero": ({"ollama_metrics_interval_s": 0}, "ollama_metrics_interval_s (0) must be at least 10"),
    "probe_longer_than_interval": ({"ollama_metrics_requests": 3, "ollama_metrics_timeout_s": 30}, "requests x timeout must be shorter"),
    "probe_timeout_zero": ({"ollama_metrics_timeout_s": 0}, "ollama_metrics_timeout_s (0"),
    "probe_url": ({"ollama_metrics_api_url": "localhost:11434"}, "ollama_metrics_api_url must be an http"),
    "probe_keep_alive": ({"ollama_metrics_keep_alive": "forever"}, "ollama_metrics_keep_alive must be empty"),
    "probe_pin_digest": ({"ollama_metrics_pinned_models": [{"name": "qwen3:4b", "digest": "sha256:xyz"}]}, "ollama_metrics_pinned_models: qwen3:4b"),
    "probe_textfile_relative": ({"ollama_metrics_textfile_dir": "var/lib"}, "ollama_metrics_textfile_dir must be an absolute path"),
}

PLAYBOOK = [{
    "name": "Validate the monitoring roles' inputs",
    "hosts": "cases",
    "gather_facts": False,
    "tasks": [{"name": "Run the validate entry points",
               # "validate", not "validate.yml": the argument-spec entry point is looked up by that exact string.
               "ansible.builtin.include_role": {"name": "{{ item }}", "tasks_from": "validate"},
               "loop": ["node_exporter", "ollama_metrics", "prometheus"]}],
}]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list[str]]:
    work = tmp_path_factory.mktemp("monitoring_validate")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_host": "10.20.0.31",
             "ollama_models_list": [{"name": "qwen3:4b", "digest": DIGEST}]}
    inventory = {"all": {"children": {
        "cases": {"hosts": {name: {**local, **extra} for name, (extra, _) in CASES.items()}},
    }}}
    run = validation.run_validation(work, inventory, PLAYBOOK, forks=30)
    return validation.outcomes(run, CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_validation(outcomes, case):
    validation.check_case(outcomes[case], CASES[case][1], case)
