"""Thinking and non-thinking (instruct) models, a malformed model blob, and the VRAM knob.

Real Ollama behaviour reproduced here (checked in its sources and issues):
- a model whose template handles <think> has the `thinking` capability (/api/show, /api/tags);
  its stream carries `message.thinking` (chat) / `thinking` (generate) chunks before any
  `content` / `response`; the thinking Qwen3 2507 build ignores `think: false`
  (ollama/ollama#12022, #12438, #12917, #13154);
- `think: true` on a model without the capability is a 400 "... does not support thinking";
- a model whose GGUF is malformed is still listed by /api/tags and fails when it is loaded;
- /api/ps reports `size_vram` (the stand-in: `vram_fraction` knob, default 0 = 100% CPU).
"""

import json
import os
import struct
import time

import httpx
import pytest

from standin_helpers import build_model

THINKING = "qwen3:4b"
INSTRUCT = "qwen3:4b-instruct-2507-q4_K_M"


def ndjson(resp):
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


@pytest.fixture
def both(standin):
    """A stand-in with the seed thinking qwen3:4b and an instruct build next to it."""
    build_model(standin.models, INSTRUCT, "--variant", "instruct")
    return standin


def chat(url, model, **extra):
    body = dict({"model": model, "messages": [{"role": "user", "content": "where is my order?"}]}, **extra)
    return httpx.post(url + "/api/chat", json=body, timeout=30)


def test_capabilities_tell_the_variants_apart(both):
    caps = {m["name"]: m["capabilities"] for m in httpx.get(both.url + "/api/tags").json()["models"]}
    assert "thinking" in caps[THINKING] and "thinking" not in caps[INSTRUCT]
    show = httpx.post(both.url + "/api/show", json={"model": INSTRUCT}).json()
    assert "thinking" not in show["capabilities"] and "<think>" not in show["template"]


@pytest.mark.parametrize("think", [None, True])
def test_thinking_model_streams_thinking_before_content(both, think):
    extra = {} if think is None else {"think": think}  # absent: Ollama enables thinking for such a model
    lines = ndjson(chat(both.url, THINKING, **extra))
    kinds = ["thinking" if ln["message"].get("thinking") else "content" for ln in lines[:-1]]
    assert kinds[:32] == ["thinking"] * 32 and set(kinds[32:]) == {"content"}
    thought = "".join(ln["message"].get("thinking", "") for ln in lines)
    assert lines[0]["message"]["content"] == "" and thought.startswith("[ollama stand-in] thinking:")
    assert lines[-1]["done"] and lines[-1]["eval_count"] == len(lines) - 1


def test_thinking_model_asked_not_to_think_reasons_anyway_in_the_content(both):
    lines = ndjson(chat(both.url, THINKING, think=False))
    assert not any(ln["message"].get("thinking") for ln in lines)
    contents = [ln["message"]["content"] for ln in lines[:-1]]
    assert "".join(contents[:32]).startswith("[ollama stand-in] thinking:") and contents[31].endswith("\n</think>\n\n")
    assert "".join(contents[32:]).startswith("[ollama stand-in] model=qwen3:4b")
    assert lines[-1]["eval_count"] == len(lines) - 1


def test_instruct_model_answers_at_once_and_refuses_think_true(both):
    lines = ndjson(chat(both.url, INSTRUCT, think=False))
    assert lines[0]["message"]["content"] == "[ollama "
    assert "".join(ln["message"]["content"] for ln in lines).startswith("[ollama stand-in] model=%s" % INSTRUCT)
    assert not any(ln["message"].get("thinking") for ln in lines)
    r = chat(both.url, INSTRUCT, think=True)
    assert r.status_code == 400 and r.json() == {"error": '"%s" does not support thinking' % INSTRUCT}


def test_generate_carries_thinking_in_its_own_field(both):
    whole = httpx.post(both.url + "/api/generate", json={"model": THINKING, "prompt": "hi", "stream": False}, timeout=30).json()
    assert whole["thinking"].startswith("[ollama stand-in] thinking:") and whole["response"].startswith("[ollama stand-in]")


def test_thinking_delays_the_first_visible_token_at_the_token_rate(both):
    both.set_control(tokens_per_second=50, thinking_tokens=20)
    started = time.monotonic()
    first_thinking = first_content = None
    with httpx.stream("POST", both.url + "/api/chat", timeout=30,
                      json={"model": THINKING, "messages": [{"role": "user", "content": "hi"}]}) as r:
        for line in r.iter_lines():
            msg = json.loads(line).get("message") or {}
            if msg.get("thinking") and first_thinking is None:
                first_thinking = time.monotonic() - started
            if msg.get("content") and first_content is None:
                first_content = time.monotonic() - started
    # The thinking streams first, and the visible answer waits for the rest of it at the token rate
    # (19 more thinking tokens at 50/s); relative, so a loaded machine's late first byte cannot fail it.
    assert first_thinking < first_content
    assert first_content - first_thinking >= 19 / 50.0 * 0.9
    assert first_content >= 20 / 50.0 * 0.9  # 20 thinking tokens at 50/s before the answer


def corrupt_string_length(models_dir):
    """Overwrite the length of the GGUF's first metadata key with 2**62 (garbage)."""
    manifest = os.path.join(models_dir, "manifests", "registry.ollama.ai", "library", "qwen3", "4b")
    with open(manifest) as f:
        layer = json.load(f)["layers"][0]
    path = os.path.join(models_dir, "blobs", layer["digest"].replace(":", "-"))
    with open(path, "r+b") as f:
        f.seek(4 + 4 + 8 + 8)  # magic, version, tensor count, kv count
        f.write(struct.pack("<Q", 1 << 62))


def test_malformed_gguf_is_listed_and_fails_only_when_loaded(standin):
    corrupt_string_length(standin.models)
    tags = httpx.get(standin.url + "/api/tags", timeout=10)
    assert tags.status_code == 200 and [m["name"] for m in tags.json()["models"]] == [THINKING]
    r = httpx.post(standin.url + "/api/generate", json={"model": THINKING, "prompt": "hi"}, timeout=10)
    assert r.status_code == 500 and r.json()["error"].startswith("unable to load model: ")
    assert httpx.get(standin.url + "/api/version").status_code == 200  # the server is still up


@pytest.mark.parametrize("fraction, processor", [(None, "100% CPU"), (1, "100% GPU"), (0.5, "50%/50% CPU/GPU")])
def test_vram_knob_sets_size_vram(standin, fraction, processor):
    if fraction is not None:
        standin.set_control(vram_fraction=fraction)
    httpx.post(standin.url + "/api/generate", json={"model": THINKING, "prompt": "", "keep_alive": -1}, timeout=10)
    (entry,) = httpx.get(standin.url + "/api/ps").json()["models"]
    assert entry["size_vram"] == round(entry["size"] * (fraction or 0))
    ps = standin.cli("ps")
    assert processor in ps.stdout


def test_openai_stream_carries_thinking_as_reasoning(both):
    body = {"model": THINKING, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(both.url + "/v1/chat/completions", json=body, timeout=30)
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant" and deltas[0]["reasoning"].startswith("[ollama ")
    assert all(d.get("reasoning") and d["content"] == "" for d in deltas[:32])
    assert "reasoning" not in deltas[32] and deltas[32]["content"]
