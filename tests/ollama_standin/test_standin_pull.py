"""Pull over the registry protocol, from a static tree; failures carry real Ollama's error text."""

import hashlib
import json
import os
import socket
import subprocess
import sys

import httpx
import pytest

from standin_helpers import HERE, build_model, free_port, run_script, wait_port
from standin import registry


def test_tree_layout(registry_tree, seed_models):
    manifest = os.path.join(registry_tree, "v2", "library", "qwen3", "manifests", "4b")
    assert hashlib.sha256(open(manifest, "rb").read()).hexdigest() == seed_models["digest"]
    for layer in seed_models["layers"] + [seed_models["config"]]:
        assert os.path.exists(os.path.join(registry_tree, "v2", "library", "qwen3", "blobs", layer["digest"]))


def test_pull_insecure_stores_manifest_byte_for_byte(make_standin, registry_url, seed_models):
    standin = make_standin(seed=False)
    name = "%s/library/qwen3:4b" % registry_url
    lines = [json.loads(x) for x in httpx.post(standin.url + "/api/pull", json={"model": name, "insecure": True}, timeout=30).text.splitlines()]
    assert lines[-1] == {"status": "success"}
    pulling = [x for x in lines if x["status"].startswith("pulling ") and x["status"] != "pulling manifest"]
    assert all(x["status"] == "pulling " + x["digest"][7:19] for x in pulling)
    host_dir = registry_url  # the registry host:port is the manifest host directory
    path = os.path.join(standin.models, "manifests", host_dir, "library", "qwen3", "4b")
    assert open(path, "rb").read() == open(seed_models["manifest"], "rb").read()
    tags = httpx.get(standin.url + "/api/tags").json()["models"]
    assert tags[0]["digest"] == seed_models["digest"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert not [f for f in os.listdir(os.path.join(standin.models, "blobs")) if "partial" in f]


def test_plain_http_server_fails_like_real_ollama(make_standin, registry_tree):
    """Real Ollama needs a redirect or a Location header for blobs; python -m http.server gives neither."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", registry_tree],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        standin = make_standin(seed=False)
        r = httpx.post(standin.url + "/api/pull", json={"model": "127.0.0.1:%d/library/qwen3:4b" % port, "insecure": True, "stream": False}, timeout=30)
        assert r.status_code == 500 and r.json() == {"error": "http: no Location header in response"}
    finally:
        proc.terminate()
        proc.wait()


def test_redirecting_registry_works(make_standin, registry_tree):
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "serve_registry.py"), "--root", registry_tree, "--port", str(port),
                             "--redirect-host", "localhost"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        standin = make_standin(seed=False)
        r = httpx.post(standin.url + "/api/pull", json={"model": "127.0.0.1:%d/library/qwen3:4b" % port, "insecure": True, "stream": False}, timeout=30)
        assert r.json() == {"status": "success"}
    finally:
        proc.terminate()
        proc.wait()


def test_pull_errors_with_real_texts(make_standin, registry_url):
    standin = make_standin(seed=False)
    port = free_port()  # nothing listens here
    r = httpx.post(standin.url + "/api/pull", json={"model": "127.0.0.1:%d/library/qwen3:4b" % port, "insecure": True, "stream": False})
    assert r.status_code == 500
    assert r.json()["error"] == (
        'pull model manifest: Get "http://127.0.0.1:%d/v2/library/qwen3/manifests/4b": dial tcp 127.0.0.1:%d: connect: connection refused' % (port, port))
    streamed = httpx.post(standin.url + "/api/pull", json={"model": "%s/library/qwen3:nope" % registry_url, "insecure": True})
    lines = [json.loads(x) for x in streamed.text.splitlines()]
    assert streamed.status_code == 200
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    r = httpx.post(standin.url + "/api/pull", json={"model": "bad name!"})
    assert r.status_code == 400 and r.json() == {"error": "invalid model name"}


def test_offline_registry_error_shape(monkeypatch):
    def no_such_host(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(registry.PullError) as info:
        registry.request_with_retry("GET", "https://registry.ollama.ai/v2/library/qwen3/manifests/4b")
    text = str(info.value)
    assert text.startswith('Get "https://registry.ollama.ai/v2/library/qwen3/manifests/4b": dial tcp: lookup registry.ollama.ai on ')
    assert text.endswith(": no such host")


def test_resume_from_partial_download(make_standin, registry_url, tmp_path):
    """A half-done download (part file + partial data) is resumed with a Range request."""
    models = str(tmp_path / "big")
    summary = build_model(models, "qwen3:4b", "--size", "300000", "--seed", "resume")
    tree = str(tmp_path / "tree")
    run_script("make_registry_tree.py", "--models", models, "--out", tree)
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "serve_registry.py"), "--root", tree, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        standin = make_standin(seed=False)
        layer = summary["layers"][0]
        blob = os.path.join(standin.models, "blobs", layer["digest"].replace(":", "-"))
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        data = open(os.path.join(models, "blobs", layer["digest"].replace(":", "-")), "rb").read()
        with open(blob + "-partial", "wb") as f:
            f.write(data[:100000] + b"\0" * (len(data) - 100000))
        with open(blob + "-partial-0", "w") as f:
            json.dump({"N": 0, "Offset": 0, "Size": len(data), "Completed": 100000}, f)
        r = httpx.post(standin.url + "/api/pull", json={"model": "127.0.0.1:%d/library/qwen3:4b" % port, "insecure": True, "stream": False}, timeout=30)
        assert r.json() == {"status": "success"}
        assert open(blob, "rb").read() == data
    finally:
        proc.terminate()
        _, err = proc.communicate()
    assert ("range bytes=100000-%d" % (len(data) - 1)).encode() in err
    assert ("range bytes=0-%d /v2/library/qwen3/blobs/%s" % (len(data) - 1, layer["digest"])).encode() not in err
