"""The official `ollama` Python client (0.6.x) against the stand-in."""

import ollama
import pytest

MODEL = "qwen3:4b"


def test_list_show_ps(standin):
    client = standin.client()
    listed = client.list()
    assert [m.model for m in listed.models] == [MODEL]
    assert listed.models[0].details.parameter_size == "4.0B"
    shown = client.show(MODEL)
    assert shown.details.family == "qwen3" and shown.modelinfo["general.architecture"] == "qwen3"
    assert "tools" in shown.capabilities
    assert client.ps().models == []
    client.generate(model=MODEL, prompt="hi")
    running = client.ps().models
    assert [m.model for m in running] == [MODEL] and running[0].size_vram == 0


def test_chat_streamed_and_not(standin):
    client = standin.client()
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    whole = client.chat(model=MODEL, messages=messages)
    assert whole.done and whole.message.role == "assistant"
    assert whole.message.content.startswith("[ollama stand-in]")
    assert whole.eval_count > 0 and whole.total_duration > 0
    parts = list(client.chat(model=MODEL, messages=messages, stream=True))
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert "".join(p.message.content for p in parts) == whole.message.content


def test_generate_with_options(standin):
    standin.set_control(thinking_tokens=0)
    r = standin.client().generate(model=MODEL, prompt="hello", options={"num_predict": 2, "seed": 1})
    assert r.response == "[ollama stand-in] " and r.done_reason == "length"


def test_create_copy_delete(standin):
    client = standin.client()
    status = client.create(model="helper", from_=MODEL, system="You are terse.", parameters={"temperature": 0.1})
    assert status.status == "success"
    assert "SYSTEM You are terse." in client.show("helper").modelfile
    client.copy("helper", "helper:v2")
    assert sorted(m.model for m in client.list().models) == ["helper:latest", "helper:v2", MODEL]
    client.delete("helper")
    assert sorted(m.model for m in client.list().models) == ["helper:v2", MODEL]


def test_errors_raise_response_error(standin):
    client = standin.client()
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="missing", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404 and info.value.error == "model 'missing' not found"
    with pytest.raises(ollama.ResponseError) as info:
        client.delete("missing")
    assert info.value.status_code == 404


def test_pull_from_registry_fixture(make_standin, registry_url):
    standin = make_standin(seed=False)
    client = standin.client()
    name = "%s/library/qwen3:4b" % registry_url
    progress = list(client.pull(name, insecure=True, stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses and "writing manifest" in statuses
    assert client.pull(name, insecure=True).status == "success"  # second pull: all blobs cached
    assert [m.model for m in client.list().models] == [name]
