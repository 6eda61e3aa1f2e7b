"""The golden canary of playbooks/upgrade.yml (#25) under bounded streaming load through the
virtual IP (4 clients, at most 420 s a roll, the nodes' stand-in slowed to 15 tokens/s). The nodes
run the ollama STAND-IN (tests/ollama_standin, a test double of Ollama, not Ollama), whose answers
are a function of the weights: the lab pins the variant's base built with the good answer table
(tests/golden/answers-good.json: 9 of the 10 golden questions right), prepare.yml builds the same
base at weights with the bad table (answers-bad.json: 4 of 10) in .cache/models-bundle-bad.
The golden gate is on as in the lab (its overlay points ollama_verify_golden_file at the example
golden set); the control turns it off with ollama_verify_golden_file="".

The tests run in order (before test_upgrade.py, which starts from the lab's pins again):
1. a roll to the bad digest with the gate on stops at the canary: the first node serves the old
   variant and base again (the same manifest digests), is back in rotation, the second node is
   untouched, 0 failed requests, and the failure names the failed golden cases;
2. control: the same bad digest with the gate off rolls through the whole fleet (0 failed requests,
   every node answers badly): the gate, not the fixture, stopped roll 1;
3. a roll back to the good digest with the gate on passes the canary and goes through (the old
   model's rate, measured first, is the bad one's 0.40).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import AUTH, LBS, MODEL, NODES, ROOT, client, servers, slowed, sudo  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_upgrade import all_up, main_pid, report, roll  # noqa: E402

testinfra_hosts = [f"ansible://{sorted(NODES)[0]}"]

GOLDEN = ("-e", f"ollama_verify_golden_file={ROOT / 'inventories/lab/golden_questions.yml'}")
NO_GOLDEN = ("-e", '{"ollama_verify_golden_file": ""}')
BASE = "qwen3:4b-instruct-2507-q4_K_M"
BASE_MANIFEST = "manifests/registry.ollama.ai/library/qwen3/4b-instruct-2507-q4_K_M"
BUNDLE_BAD = ROOT / ".cache/models-bundle-bad"
LAB = yaml.safe_load((ROOT / "inventories/lab/group_vars/ollama_nodes/10-lab.yml").read_text())
RETURN_QUESTION = "I bought headphones three weeks ago and do not like them. Can I still return them?"


def pins(bundle: pathlib.Path | None) -> tuple[list[dict], str]:
    """The lab's pins with the variant's base moved to the bundle's build (None: the lab's own)."""
    if bundle is None:
        base = next(pin for pin in LAB["ollama_models_list"] if pin["name"] == BASE)
        return LAB["ollama_models_list"], base["digest"].split(":")[-1]
    digest = hashlib.sha256((bundle / BASE_MANIFEST).read_bytes()).hexdigest()
    return [dict(pin, digest=f"sha256:{digest}", bundle=str(bundle)) if pin["name"] == BASE else pin
            for pin in LAB["ollama_models_list"]], digest


def flat(out: str) -> str:
    """The run's output with every run of whitespace one space: the YAML callback folds a long
    message over several lines."""
    return " ".join(out.split())


def tags(name: str) -> dict[str, str]:
    """{model: digest} of /api/tags on the node itself."""
    body = json.loads(sudo(name, f"curl -sf http://{NODES[name]}:11434/api/tags"))
    return {m["name"]: m["digest"] for m in body["models"]}


def answer_through_front(question: str = RETURN_QUESTION) -> str:
    with client() as http:
        body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "stream": False}
        response = http.post("/api/chat", json=body, headers=AUTH)
        response.raise_for_status()
        return response.json()["message"]["content"]


@pytest.fixture(scope="module", autouse=True)
def slow_nodes():
    with slowed(15):
        yield


def test_a_digest_that_fails_the_golden_set_stops_at_the_canary():
    all_up()
    first, second = sorted(NODES)
    before = {name: tags(name) for name in NODES}
    pid_second = main_pid(second)
    bad_pins, bad = pins(BUNDLE_BAD)
    assert before[first][BASE] != bad
    rc, out, load, monitor, wall = roll(*GOLDEN, "-e", json.dumps({"ollama_models_list": bad_pins}))
    report("roll to a digest that fails the golden set (gate on)", load, monitor, wall)
    assert rc != 0, out[-4000:]
    out = flat(out)
    # The old model was asked first, on a node still serving it; the canary then failed, naming cases.
    assert "Golden questions before the roll" in out and "resolution rate 0.90" in out, out[-4000:]
    assert f"Upgrade stopped at {first}" in out and "is back in rotation" in out, out[-4000:]
    assert "below the threshold 0.85" in out and "return-window" in out
    assert "as before the roll" in out
    # The first node serves the old variant and base again, byte for byte; no rollback copy is left.
    after_first = tags(first)
    assert after_first[BASE] == before[first][BASE] and after_first[f"{MODEL}:latest"] == before[first][f"{MODEL}:latest"]
    assert not [name for name in after_first if name.startswith("ollama-fleet-rollback/")]
    for lb in LBS:
        assert servers(lb)[first]["status"].startswith("UP")
    # The second node was never touched.
    assert tags(second) == before[second] and main_pid(second) == pid_second
    assert "30 days" in answer_through_front()  # the fleet still answers with the good weights
    assert load.failed() == [], load.failed()[:5]


def test_control_the_same_bad_digest_rolls_through_with_the_gate_off():
    all_up()
    bad_pins, bad = pins(BUNDLE_BAD)
    rc, out, load, monitor, wall = roll(*NO_GOLDEN, "-e", json.dumps({"ollama_models_list": bad_pins}))
    report("control: the same bad digest, gate off", load, monitor, wall)
    assert rc == 0, out[-4000:]
    assert {tags(name)[BASE] for name in NODES} == {bad}
    assert "All sales are final" in answer_through_front()  # every node now answers the bad way
    assert load.failed() == [], load.failed()[:5]


def test_a_digest_that_passes_the_golden_set_goes_through():
    all_up()
    good_pins, good = pins(None)
    rc, out, load, monitor, wall = roll(*GOLDEN, "-e", json.dumps({"ollama_models_list": good_pins}))
    report("roll to a digest that passes the golden set (gate on)", load, monitor, wall)
    assert rc == 0, out[-4000:]
    out = flat(out)
    assert "Golden questions before the roll" in out and "resolution rate 0.40" in out  # the old (bad) model
    assert out.count("golden questions 9/10, resolution rate 0.90") >= len(NODES)
    assert {tags(name)[BASE] for name in NODES} == {good}
    assert "30 days" in answer_through_front()
    assert load.failed() == [], load.failed()[:5]
