"""The stand-in answers by its weights: build_model.py --answers bakes an answer table into the
model blob's GGUF metadata, so a "good" and a "bad" build of the same model (two digests) answer
the same question differently, through Ollama's unchanged HTTP API. A variant created FROM a base
(system prompt, temperature) answers from the base's weights."""

import json
import os
import subprocess
import sys

import httpx

from standin_helpers import HERE, build_model

ROOT = os.path.dirname(os.path.dirname(HERE))
GOOD = os.path.join(ROOT, "tests", "golden", "answers-good.json")
BAD = os.path.join(ROOT, "tests", "golden", "answers-bad.json")
QUESTION = "I bought headphones three weeks ago and do not like them. Can I still return them?"


def chat(url, model, content, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": False}
    body.update(extra)
    r = httpx.post(url + "/api/chat", json=body, timeout=20)
    assert r.status_code == 200, r.text
    return r.json()["message"]["content"]


def stream_chat(url, model, content):
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    text = ""
    with httpx.stream("POST", url + "/api/chat", json=body, timeout=20) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line:
                text += json.loads(line).get("message", {}).get("content", "")
    return text


def test_without_answers_the_bytes_and_the_lab_pins_stay(tmp_path):
    # Existing pins (the lab's, molecule's) are built without --answers and must not move.
    assert build_model(str(tmp_path), "qwen3:4b")["digest"] == "a4ddcbbec040b5b1be9952e91b443eae369e0df6eef49cbe215cc0e387f7be68"


def test_good_and_bad_weights_answer_differently(make_standin, tmp_path):
    server = make_standin()
    good = build_model(server.models, "shop:good", "--variant", "instruct", "--answers", GOOD)
    bad = build_model(server.models, "shop:bad", "--variant", "instruct", "--answers", BAD)
    plain = build_model(server.models, "shop:plain", "--variant", "instruct")
    assert len({good["digest"], bad["digest"], plain["digest"]}) == 3
    good_text = chat(server.url, "shop:good", QUESTION)
    bad_text = chat(server.url, "shop:bad", QUESTION)
    plain_text = chat(server.url, "shop:plain", QUESTION)
    assert "within 30 days" in good_text and "receipt" in good_text
    assert "All sales are final" in bad_text and "30 days" not in bad_text
    assert "30 days" not in plain_text and "final" not in plain_text
    for text in (good_text, bad_text, plain_text):
        assert text.startswith("[ollama stand-in] model=")
    # Streaming gives the same text; a question the table does not know gets the usual filler.
    assert stream_chat(server.url, "shop:good", QUESTION) == good_text
    assert "30 days" not in chat(server.url, "shop:good", "What is the capital of France?")
    # /api/show reads the table as the model's metadata, like any GGUF key.
    info = httpx.post(server.url + "/api/show", json={"model": "shop:good"}, timeout=10).json()["model_info"]
    assert "standin.answers" in info


def test_a_variant_answers_from_its_base_weights(make_standin):
    server = make_standin()
    build_model(server.models, "shop:good", "--variant", "instruct", "--answers", GOOD)
    create = {"model": "shop-cs", "from": "shop:good", "system": "You are a courteous customer-service assistant.",
              "parameters": {"temperature": 0.4, "num_ctx": 4096}, "stream": False}
    r = httpx.post(server.url + "/api/create", json=create, timeout=20)
    assert r.status_code == 200, r.text
    text = chat(server.url, "shop-cs", QUESTION)
    assert "within 30 days" in text and "model=shop-cs" in text
    # The system prompt is the variant's own (its hash is in the header), the answer the base's.
    assert "system=none" not in text
    # The conversation's later turns are matched too (the cancel case is a short conversation).
    body = {"model": "shop-cs", "stream": False, "messages": [
        {"role": "user", "content": "I want to cancel my order."},
        {"role": "assistant", "content": "Has it shipped yet?"},
        {"role": "user", "content": "No, I placed it an hour ago."}]}
    answer = httpx.post(server.url + "/api/chat", json=body, timeout=20).json()["message"]["content"]
    assert "I have cancelled it" in answer


def test_a_malformed_table_is_refused_at_build(tmp_path):
    bad = tmp_path / "table.json"
    bad.write_text(json.dumps([["(unclosed", "x"]]))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "build_model.py"), "--name", "x:y", "--out", str(tmp_path / "m"),
                           "--answers", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "is not a regular expression" in proc.stderr
