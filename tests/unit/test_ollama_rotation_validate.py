"""Input checks of the `ollama_rotation` role: bad values fail before any host is touched, naming
the variable (one local host per case, one ansible-playbook run; tests/unit/validation.py)."""

from __future__ import annotations

import sys

import pytest

import validation  # tests/unit/validation.py

CASES = {
    "defaults": ({}, None),
    "enabled": ({"ollama_rotation_state": "enabled"}, None),
    "bad_state": ({"ollama_rotation_state": "off"}, "ollama_rotation_state"),
    "zero_drain_timeout": ({"ollama_rotation_drain_timeout": 0}, "ollama_rotation_drain_timeout"),
    "negative_up_timeout": ({"ollama_rotation_up_timeout": -5}, "ollama_rotation_up_timeout"),
    "timeout_not_a_number": ({"ollama_rotation_drain_timeout": "long"}, "ollama_rotation_drain_timeout"),
    "relative_socket": ({"ollama_rotation_socket": "run/haproxy/admin.sock"}, "ollama_rotation_socket"),
}

PLAYBOOK = [{
    "name": "Validate the rotation inputs",
    "hosts": "cases",
    "gather_facts": False,
    # "validate", not "validate.yml": the argument-spec entry point is looked up by that exact string.
    "tasks": [{"name": "Run the validate entry point", "ansible.builtin.include_role": {"name": "ollama_rotation", "tasks_from": "validate"}}],
}]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list[str]]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {"cases": {"hosts": {name: {**extra, **local} for name, (extra, _) in CASES.items()}}}}}
    run = validation.run_validation(tmp_path_factory.mktemp("rotation_validate"), inventory, PLAYBOOK)
    return validation.outcomes(run, CASES)


@pytest.mark.parametrize("case", CASES)
def test_validation(outcomes, case):
    validation.check_case(outcomes[case], CASES[case][1], case)
