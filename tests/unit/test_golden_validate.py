"""Input checks of the golden questions (`ollama_verify` role, run by playbooks/preflight.yml): a
threshold outside 0-1, a golden file that does not parse, a case with no expectation, and the other
malformed files fail before any host is touched, naming the variable (one local host per case, one
ansible-playbook run; tests/unit/validation.py). Control: the production example and the lab's
link to it pass."""

from __future__ import annotations

import sys

import pytest

import validation  # tests/unit/validation.py

ROOT = validation.ROOT
FILES = {
    "not_yaml": "cases:\n  - name: a\n    question: [unclosed\n",
    "no_expectation": "cases:\n  - name: refund\n    question: How long does a refund take?\n    none_of: [never]\n",
    "bad_regex": "cases:\n  - name: refund\n    question: Refund?\n    all_of: ['re:(unclosed']\n",
    "question_and_conversation": ("cases:\n  - name: both\n    question: Hi?\n    all_of: [hello]\n"
                                  "    conversation: [{role: user, content: Hi}]\n"),
    "ends_with_assistant": ("cases:\n  - name: conv\n    all_of: [hello]\n    conversation:\n"
                            "      - {role: user, content: Hi}\n      - {role: assistant, content: Hello}\n"),
    "duplicate": "cases:\n  - {name: a, question: x, all_of: [y]}\n  - {name: a, question: z, all_of: [y]}\n",
    "typo_key": "cases:\n  - {name: a, question: x, must_contain: [y]}\n",
    "empty": "cases: []\n",
}

CASES = {
    "defaults": ({}, None),
    "production": ({"ollama_verify_golden_file": str(ROOT / "inventories/production/golden_questions.yml")}, None),
    "lab": ({"ollama_verify_golden_file": str(ROOT / "inventories/lab/golden_questions.yml")}, None),
    "threshold_above_1": ({"ollama_verify_golden_threshold": 1.5}, "ollama_verify_golden_threshold must be a number between 0 and 1"),
    "threshold_negative": ({"ollama_verify_golden_threshold": -0.1}, "ollama_verify_golden_threshold"),
    "threshold_not_a_number": ({"ollama_verify_golden_threshold": "most"}, "ollama_verify_golden_threshold"),
    "margin_above_1": ({"ollama_verify_golden_margin": 2}, "ollama_verify_golden_margin"),
    "baseline_above_1": ({"ollama_verify_golden_baseline_rate": 1.2}, "ollama_verify_golden_baseline_rate"),
    "threshold_edges": ({"ollama_verify_golden_threshold": 1, "ollama_verify_golden_margin": 0}, None),
    "missing_file": ({"ollama_verify_golden_file": "/nonexistent/golden.yml"}, "ollama_verify_golden_file (/nonexistent/golden.yml): the file cannot be read"),
    "not_yaml": (None, "does not parse as YAML"),
    "no_expectation": (None, "case refund: has no expectation"),
    "bad_regex": (None, "is not a regular expression"),
    "question_and_conversation": (None, "case both: needs either question or conversation"),
    "ends_with_assistant": (None, "must end with the customer's (user) turn"),
    "duplicate": (None, "case a: the name is used twice"),
    "typo_key": (None, "unknown keys must_contain"),
    "empty": (None, "cases must be a non-empty list"),
    "bad_textfile": ({"ollama_verify_golden_textfile": "golden.txt"}, "ollama_verify_golden_textfile"),
}

PLAYBOOK = [{
    "name": "Validate the golden inputs",
    "hosts": "cases",
    "gather_facts": False,
    "tasks": [{"name": "Run the validate entry point", "ansible.builtin.include_role": {"name": "ollama_verify", "tasks_from": "validate"}}],
}]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list[str]]:
    work = tmp_path_factory.mktemp("golden_validate")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {}
    for name, (extra, _) in CASES.items():
        if extra is None:
            path = work / f"{name}.yml"
            path.write_text(FILES[name])
            extra = {"ollama_verify_golden_file": str(path)}
        hosts[name] = {**extra, **local}
    run = validation.run_validation(work, {"all": {"children": {"cases": {"hosts": hosts}}}}, PLAYBOOK)
    return validation.outcomes(run, CASES)


@pytest.mark.parametrize("case", CASES)
def test_validation(outcomes, case):
    message = CASES[case][1]
    validation.check_case(outcomes[case], message, case)
    if message and case in FILES:
        # A file's problems name the variable and the file.
        assert any("ollama_verify_golden_file (" in m for m in outcomes[case]), outcomes[case]
