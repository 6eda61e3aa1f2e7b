"""Repository-wide rules: pins agree, every role is documented and validated the same way."""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def installed_collections() -> dict[str, str]:
    out = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-galaxy"), "collection", "list", "--format", "yaml"],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    found: dict[str, str] = {}
    for per_path in yaml.safe_load(out).values():
        for name, info in per_path.items():
            found.setdefault(name, info["version"])
    return found


def test_requirements_yml_pins_the_collections_the_tests_use():
    pins = {c["name"]: c["version"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    installed = installed_collections()
    assert pins, "requirements.yml pins no collection"
    for name, version in pins.items():
        assert installed.get(name) == version, f"{name}: requirements.yml pins {version}, the test env has {installed.get(name)}"


def test_python_toolchain_is_fully_pinned():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", line), f"unpinned: {line}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_the_standard_layout(role):
    for part in ("meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml", "tasks/validate.yml", "README.md"):
        assert (role / part).is_file(), f"{role.name} lacks {part}"


def load_spec(role: pathlib.Path) -> dict:
    return yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_validate_entry_point_checks_the_same_options_as_main(role):
    # playbooks/preflight.yml runs tasks_from: validate.yml on every host before any change.
    spec = load_spec(role)
    assert spec["validate"]["options"] == spec["main"]["options"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_agree_with_argument_spec(role):
    options = load_spec(role)["main"]["options"]
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
    assert set(defaults) == {k for k, v in options.items() if "default" in v}, "defaults/main.yml and the spec list different variables"
    for name, value in defaults.items():
        assert options[name]["default"] == value, f"{name}: defaults/main.yml has {value!r}, argument_specs {options[name]['default']!r}"
    for name, opt in options.items():
        assert name.startswith(f"{role.name}_"), f"{name} is not prefixed with the role name"
        assert opt.get("description"), f"{name} has no description"


def readme_rows(role: pathlib.Path) -> dict[str, str]:
    # A "|" inside a cell is written "\|", as Markdown tables need (e.g. a default with a filter).
    rows = {}
    for line in (role / "README.md").read_text().splitlines():
        m = re.match(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*((?:[^|\\]|\\.)*?)\s*\|", line)
        if m:
            rows[m.group(1)] = m.group(2).replace("\\|", "|")
    return rows


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_documents_every_variable_with_its_default(role):
    options = load_spec(role)["main"]["options"]
    rows = readme_rows(role)
    assert set(rows) == set(options), f"README table vs spec: missing {set(options) - set(rows)}, extra {set(rows) - set(options)}"
    for name, opt in options.items():
        if "default" in opt:
            shown = rows[name].strip("`")
            expected = yaml.safe_dump(opt["default"], default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
            assert yaml.safe_load(shown) == opt["default"] or shown == expected, f"{name}: README shows {shown!r}, spec default {opt['default']!r}"


def other_roles_variables(role: pathlib.Path, text: str) -> set[str]:
    """Variables of other roles a role's file names: `<role>_…` for a role other than this one
    (the longest role name that prefixes the variable decides whose it is)."""
    names = sorted((p.name for p in ROLES), key=len, reverse=True)
    found = set()
    for var in re.findall(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b", text):
        owner = next((n for n in names if var.startswith(n + "_")), None)
        if owner and owner != role.name and not var.endswith("_nodes"):  # inventory groups, not variables
            found.add(var)
    return found


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_defaults_read_no_other_role_variable(role):
    """Explicit interfaces: a role's defaults and argument spec read only its own variables and
    facts; where two roles must agree, the inventory hands both the same value."""
    spec = load_spec(role)["main"]["options"]
    templated = [str(v) for v in (yaml.safe_load((role / "defaults/main.yml").read_text()) or {}).values() if "{{" in str(v)]
    templated += [str(o["default"]) for o in spec.values() if "{{" in str(o.get("default", ""))]
    assert not other_roles_variables(role, "\n".join(templated)), f"{role.name} falls back to another role's variables"


def test_production_example_hands_the_fleet_values_to_each_role():
    """The ports and paths two roles must agree on are set once (fleet_* in group_vars/all.yml)
    and handed to both."""
    gv = ROOT / "inventories/production/group_vars"
    every = {p.stem: yaml.safe_load(p.read_text()) or {} for p in gv.glob("*.yml")}
    pairs = {
        "fleet_ollama_port": [("ollama_nodes", "ollama_port"), ("all", "firewall_ollama_port")],
        "fleet_mirror_port": [("mirror_nodes", "ollama_mirror_port"), ("all", "firewall_mirror_port")],
        "fleet_node_exporter_port": [("all", "node_exporter_port"), ("all", "firewall_node_exporter_port")],
        "fleet_haproxy_exporter_port": [("lb_nodes", "haproxy_prometheus_port"), ("all", "firewall_haproxy_exporter_port")],
        "fleet_prometheus_port": [("monitoring_nodes", "prometheus_port"), ("all", "firewall_prometheus_port")],
        "fleet_textfile_dir": [("all", "node_exporter_textfile_dir"), ("lb_nodes", "keepalived_state_metric_dir"),
                               ("ollama_nodes", "ollama_metrics_textfile_dir")],
        "fleet_first_token_s": [("ollama_nodes", "ollama_verify_ttft_p95_s"), ("all", "prometheus_alert_ttft_p95_s")],
    }
    for fleet, uses in pairs.items():
        assert fleet in every["all"], fleet
        for group, var in uses:
            assert every[group].get(var) == "{{ %s }}" % fleet, f"{group}.yml: {var} is not handed {fleet}"
