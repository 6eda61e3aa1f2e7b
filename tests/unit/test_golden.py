"""Golden questions: the file's rules, the score of an answer, the resolution rate and its gate
(plugins/module_utils/golden.py), the probe asking the cases, and the ollama_verify role on
localhost against the ollama STAND-IN (tests/ollama_standin, a test double of Ollama: its answers
are a function of the weights, and build_model.py --answers bakes a good or a bad answer table
into them). Control: the same gate passes the good weights and fails the bad ones."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.ollama_fleet.fleet.plugins.filter import ollama as filters
from ansible_collections.ollama_fleet.fleet.plugins.module_utils import golden

import promtool  # tests/unit/promtool.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "modules"))
import ollama_verify_probe as probe  # noqa: E402
from test_ollama_verify_probe import Server  # noqa: E402

PRODUCTION = ROOT / "inventories/production/golden_questions.yml"
GOOD = ROOT / "tests/golden/answers-good.json"
BAD = ROOT / "tests/golden/answers-bad.json"
STANDIN = ROOT / "tests/ollama_standin"


def case(**kw):
    return golden.normalize({"cases": [dict({"name": "c", "question": "q?"}, **kw)]})[0]


# -- the rules -------------------------------------------------------------------------------------


def test_the_production_example_is_valid_and_the_lab_links_it():
    assert golden.problems(yaml.safe_load(PRODUCTION.read_text())) == []
    assert (ROOT / "inventories/lab/golden_questions.yml").resolve() == PRODUCTION.resolve()


def test_a_conversation_becomes_the_api_messages():
    (c,) = golden.normalize({"cases": [{"name": "x", "all_of": ["a"], "conversation": [
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}]}]})
    assert [m["role"] for m in c["messages"]] == ["user", "assistant", "user"]
    assert golden.normalize({"cases": [{"name": "y", "question": "q", "any_of": "single"}]})[0]["any_of"] == ["single"]


@pytest.mark.parametrize("pattern, answer, found", [
    ("30 days", "Returns within 30  DAYS.", True),          # case and white space do not matter
    ("30 days", "Returns within 30 business days", False),
    (r"re:\b(5|five)\b", "about five business days", True),
    (r"re:\b(5|five)\b", "15 business days", False),        # a regex says what a phrase cannot
    ("receipt", "bring the Receipt", True),
])
def test_matches(pattern, answer, found):
    assert golden.matches(pattern, answer) is found


def test_score_all_any_none():
    c = case(all_of=["30 days"], any_of=["receipt", "order number"], none_of=["re:\\bno returns\\b"])
    assert golden.score(c, "Within 30 days, with your order number.")["passed"]
    missing = golden.score(c, "Within 30 days.")
    assert not missing["passed"] and missing["missing"] == ["any of: receipt | order number"]
    forbidden = golden.score(c, "30 days, receipt, but no returns on sale items")
    assert not forbidden["passed"] and forbidden["forbidden"] == ["re:\\bno returns\\b"]
    error = golden.score(c, None, "HTTP 500: boom")
    assert not error["passed"] and error["why"] == "no answer: HTTP 500: boom"


def results(passed, failed):
    return [{"name": "p%d" % i, "passed": True, "why": ""} for i in range(passed)] + \
           [{"name": "f%d" % i, "passed": False, "why": "missing 'x'"} for i in range(failed)]


def test_the_gate_threshold_is_inclusive_and_names_the_failed_cases():
    assert golden.summary(results(17, 3), 0.85)["problems"] == []      # 0.85 passes 0.85
    low = golden.summary(results(16, 4), 0.85)
    assert low["rate"] == 0.8 and low["failed"] == ["f0", "f1", "f2", "f3"]
    (problem,) = low["problems"]
    assert "resolution rate 0.80 (16 of 20 golden cases) is below the threshold 0.85" in problem
    assert "f3 (missing 'x')" in problem


def test_the_gate_against_the_old_model_and_its_margin():
    # 0.90 passes the threshold, but the old model answered 1.00: more than 0.05 worse stops the roll.
    (problem,) = golden.summary(results(9, 1), 0.85, baseline_rate=1.0, margin=0.05)["problems"]
    assert "below the old model's 1.00 by more than 0.05" in problem
    assert golden.summary(results(19, 1), 0.85, baseline_rate=1.0, margin=0.05)["problems"] == []
    assert golden.summary(results(9, 1), 0.85, baseline_rate=0.9, margin=0.0)["problems"] == []


def test_the_filters_parse_and_refuse():
    text = PRODUCTION.read_text()
    assert filters.ollama_golden_problems(text) == []
    assert len(filters.ollama_golden_cases(text)) == 10
    assert "does not parse as YAML" in filters.ollama_golden_problems("cases: [unclosed")[0]
    with pytest.raises(Exception, match="has no expectation"):
        filters.ollama_golden_cases("cases:\n  - {name: a, question: b}\n")


def test_metrics_text_is_valid_and_stable(tmp_path):
    summary = golden.summary([{"name": "a", "passed": True, "why": ""}, {"name": "b", "passed": False, "why": "x"}], 0.85)
    text = golden.metrics_text(summary, "qwen3-cs", "ab" * 32)
    assert 'ollama_golden_resolution_rate{model="qwen3-cs",digest="%s"} 0.5' % ("ab" * 32) in text
    assert 'ollama_golden_case_passed{model="qwen3-cs",digest="%s",case="b"} 0' % ("ab" * 32) in text
    assert text == golden.metrics_text(summary, "qwen3-cs", "ab" * 32)  # no timestamp: a re-run changes nothing
    path = tmp_path / "ollama_golden.prom"
    path.write_text(text)
    check = subprocess.run([promtool.promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- against the ollama STAND-IN --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One stand-in with the good and the bad build of the variant's base, and the variant."""
    s = Server(tmp_path_factory.mktemp("golden"))
    models = s.models_dir
    for name, table in (("shop:good", GOOD), ("shop:bad", BAD)):
        subprocess.run([sys.executable, str(STANDIN / "build_model.py"), "--name", name, "--variant", "instruct",
                        "--answers", str(table), "--out", models], check=True, capture_output=True)
    yield s
    s.stop()


def make_variant(server, base):
    """qwen3-cs FROM base, with a system prompt and temperature, as ollama_models_variant builds it."""
    import urllib.request
    body = json.dumps({"model": "qwen3-cs", "from": base, "stream": False,
                       "system": "You are a courteous customer-service assistant.",
                       "parameters": {"temperature": 0.4, "num_ctx": 4096}}).encode()
    req = urllib.request.Request(server.url + "/api/create", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status == 200


def run_golden(server, **extra):
    params = {"url": server.url, "model": "qwen3-cs", "timeout_s": 10, "keep_alive": "", "num_predict": 0,
              "golden_cases": golden.normalize(yaml.safe_load(PRODUCTION.read_text())), "golden_threshold": 0.85}
    params.update(extra)
    return probe.run_golden(params)


def test_the_gate_discriminates_good_from_bad_weights(server):
    make_variant(server, "shop:good")
    good = run_golden(server)
    make_variant(server, "shop:bad")
    bad = run_golden(server)
    # The good weights pass with one named miss; the bad ones (control) fail, naming what they got wrong.
    assert good["rate"] == 0.9 and good["failed"] == ["refund-time"] and good["problems"] == []
    assert bad["rate"] == 0.4 and bad["problems"]
    assert "return-window" in bad["failed"] and "warranty" in bad["failed"]
    assert "return-window (missing '30 days'" in bad["problems"][0]
    # The old model's rate as the canary's baseline: 0.4 against 0.9 - 0.05 fails on that rule too.
    assert len(run_golden(server, golden_baseline_rate=good["rate"], golden_margin=0.05)["problems"]) == 2


def test_a_failed_request_fails_its_case(server):
    make_variant(server, "shop:good")
    server.knobs(fault="http500")
    try:
        result = run_golden(server)
    finally:
        server.knobs()
    assert result["rate"] == 0.0 and result["results"][0]["why"].startswith("no answer: HTTP 500")


def test_the_probe_keeps_the_visible_answer_and_the_inter_token_time(server):
    make_variant(server, "shop:good")
    server.knobs(tokens_per_second=50)
    try:
        sample = probe.probe_once(server.url, "qwen3-cs", "Do you charge for delivery?", 10, keep_answer=True)
    finally:
        server.knobs()
    assert "free for orders over 50 euros" in sample["answer"]
    assert 0.01 < sample["itl_s"] < 0.2
    assert "answer" not in probe.probe_once(server.url, "qwen3-cs", "hello", 10)  # the timed probe keeps no text


# -- the role on localhost ------------------------------------------------------------------------


def play(server, tmp_path, golden_file=PRODUCTION, **extra):
    variables = {"ollama_verify_api_url": server.url, "ollama_verify_model": "qwen3-cs", "ollama_verify_requests": 2,
                 "ollama_verify_require_gpu": False, "ollama_verify_golden_file": str(golden_file),
                 "ollama_verify_golden_textfile": str(tmp_path / "textfile" / "ollama_golden.prom"),
                 "ollama_verify_report_file": str(tmp_path / "report.json")}
    variables.update(extra)
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Verify", "hosts": "node1", "gather_facts": False, "vars": variables,
        "roles": [{"role": "ollama_verify"}]}]))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"node1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
           "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def test_the_role_reports_the_rate_per_node_and_names_a_failed_case(server, tmp_path):
    make_variant(server, "shop:good")
    run = play(server, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "golden resolution rate >= 0.85 per node" in run.stdout
    assert "node1: golden questions 9/10, resolution rate 0.90 (threshold 0.85) on qwen3-cs@" in run.stdout
    assert "failed: refund-time (missing" in run.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    (row,) = report["results"]
    assert row["golden"]["rate"] == 0.9 and len(row["digest"]) == 64
    prom = (tmp_path / "textfile" / "ollama_golden.prom").read_text()
    assert 'ollama_golden_resolution_rate{model="qwen3-cs",digest="%s"} 0.9' % row["digest"] in prom
    # A second run with the same answers leaves the textfile unchanged (no timestamp in it).
    again = play(server, tmp_path)
    assert again.returncode == 0
    assert re.search(r"Write the golden result textfile\] \*+\nok: \[node1\]", again.stdout), again.stdout[-3000:]
    assert re.search(r"Write the golden result textfile\] \*+\nchanged: \[node1\]", run.stdout)


def test_the_role_fails_a_node_below_the_threshold_naming_the_cases(server, tmp_path):
    make_variant(server, "shop:bad")
    try:
        run = play(server, tmp_path)
    finally:
        make_variant(server, "shop:good")
    assert run.returncode != 0
    assert "resolution rate 0.40 (4 of 10 golden cases) is below the threshold 0.85" in run.stdout
    assert "return-window (missing '30 days'" in run.stdout
    # The rate and the digest reached the metrics even though the node failed.
    assert "ollama_golden_resolution_rate" in (tmp_path / "textfile" / "ollama_golden.prom").read_text()
