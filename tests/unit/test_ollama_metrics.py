"""The node's metrics script (roles/ollama_metrics/files/ollama_metrics.py) against a fake Ollama
on 127.0.0.1: the metric text it writes, the atomic replacement of the file, a node without a GPU
(no nvidia-smi), a fake nvidia-smi, an Ollama that is down, and the configuration check the role's
template uses as its validate step. The script runs as the timer runs it: a separate python3
process, without Ansible on its import path."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "ollama_metrics" / "files" / "ollama_metrics.py"
sys.path.insert(0, str(SCRIPT.parent))

import ollama_metrics as metrics  # noqa: E402

INSTRUCT = "qwen3:4b-instruct-2507-q4_K_M"
D1, D2 = "a1" * 32, "b2" * 32
GIB = 1 << 30


class FakeOllama(http.server.BaseHTTPRequestHandler):
    """/api/version, /api/tags, /api/ps and a streamed /api/chat, shaped as Ollama answers them."""

    state = {"vram": 3 * GIB, "fail_chat": False}

    def log_message(self, *args):
        pass

    def _json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/api/version":
            self._json({"version": "0.33.0"})
        elif self.path == "/api/tags":
            self._json({"models": [{"name": INSTRUCT, "digest": D1}, {"name": "qwen3-cs:latest", "digest": "c3" * 32}]})
        elif self.path == "/api/ps":
            self._json({"models": [{"name": "qwen3-cs:latest", "model": "qwen3-cs:latest", "size": 4 * GIB,
                                    "size_vram": self.state["vram"], "expires_at": "2026-11-25T14:38:31.83753-07:00"}]})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.state["fail_chat"]:
            self._json({"error": "model requires more system memory"}, 500)
            return
        lines = [{"model": "qwen3-cs", "message": {"content": "Hi"}, "done": False},
                 {"model": "qwen3-cs", "message": {"content": ""}, "done": True, "eval_count": 4, "eval_duration": 10 ** 8}]
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def ollama():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


@pytest.fixture(autouse=True)
def reset_state():
    FakeOllama.state.update(vram=3 * GIB, fail_chat=False)


def config(tmp_path, base, **extra):
    cfg = {"url": base, "model": "qwen3-cs", "requests": 2, "timeout_s": 5, "prompt": "Hello", "num_predict": 8,
           "keep_alive": "", "think": "false", "textfile": str(tmp_path / "ollama.prom"), "nvidia_smi": "",
           "pinned_models": [{"name": INSTRUCT, "digest": "sha256:" + D1}, {"name": "qwen3:4b", "digest": D2}]}
    cfg.update(extra)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(cfg))
    return path


def run_script(*args):
    """The script as the timer runs it: its own python3 process, no Ansible importable."""
    env = {"PATH": os.environ["PATH"], "PYTHONNOUSERSITE": "1"}
    return subprocess.run(["/usr/bin/python3", "-S", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def samples(text):
    """{metric{labels}: value} of a text exposition (comments skipped)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_file_from_a_healthy_node_without_gpu(ollama, tmp_path):
    run = run_script("--config", str(config(tmp_path, ollama)))
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "ollama.prom").read_text()
    got = samples(text)
    assert got["ollama_up"] == 1
    assert got['ollama_build_info{version="0.33.0"}'] == 1
    assert got['ollama_probe_requests{model="qwen3-cs:latest"}'] == 2
    assert got['ollama_probe_errors{model="qwen3-cs:latest"}'] == 0
    assert got['ollama_probe_success{model="qwen3-cs:latest"}'] == 1
    assert 0 < got['ollama_probe_first_token_seconds{model="qwen3-cs:latest"}'] <= got['ollama_probe_total_seconds{model="qwen3-cs:latest"}'] < 5
    assert got['ollama_probe_tokens_per_second{model="qwen3-cs:latest"}'] == 40
    assert got['ollama_pinned_model_present{digest="%s",model="%s"}' % (D1, INSTRUCT)] == 1
    assert got['ollama_pinned_model_present{digest="%s",model="qwen3:4b"}' % D2] == 0
    assert got['ollama_model_loaded{model="qwen3-cs:latest"}'] == 1
    assert got['ollama_model_vram_ratio{model="qwen3-cs:latest"}'] == 0.75
    assert got['ollama_loaded_model_size_bytes{model="qwen3-cs:latest"}'] == 4 * GIB
    assert got['ollama_loaded_model_vram_bytes{model="qwen3-cs:latest"}'] == 3 * GIB
    # 14:38:31.83753 at -07:00 is 21:38:31.83753 UTC.
    assert got['ollama_loaded_model_expiry_timestamp_seconds{model="qwen3-cs:latest"}'] == pytest.approx(1795642711.83753)
    # No GPU: no nvidia-smi, a count of 0 and no GPU series, not an error.
    assert got["ollama_gpu_count"] == 0
    assert "ollama_gpu_query_success" not in text and "ollama_gpu_utilization_ratio" not in text
    assert "ollama_probe_last_run_timestamp_seconds" in got and "ollama_probe_duration_seconds" in got
    # Each metric has one HELP and one TYPE line, before its samples.
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))
    assert not list(tmp_path.glob(".ollama.prom.*")), "a temporary file was left behind"


def test_down_node_is_a_measurement_not_a_failure(tmp_path):
    run = run_script("--config", str(config(tmp_path, "http://127.0.0.1:9", timeout_s=2)))
    assert run.returncode == 0, run.stderr
    got = samples((tmp_path / "ollama.prom").read_text())
    assert got["ollama_up"] == 0
    assert got['ollama_probe_errors{model="qwen3-cs:latest"}'] == 2
    assert got['ollama_probe_success{model="qwen3-cs:latest"}'] == 0
    assert not [k for k in got if k.startswith(("ollama_probe_first_token", "ollama_pinned_model_present", "ollama_model_"))]


def test_failed_chat_counts_errors_and_keeps_the_rest(ollama, tmp_path):
    FakeOllama.state["fail_chat"] = True
    FakeOllama.state["vram"] = 4 * GIB
    data = metrics.collect(json.loads(config(tmp_path, ollama).read_text()))
    got = samples(metrics.render(data))
    assert got['ollama_probe_errors{model="qwen3-cs:latest"}'] == 2 and got["ollama_up"] == 1
    assert got['ollama_model_vram_ratio{model="qwen3-cs:latest"}'] == 1
    assert 'ollama_probe_first_token_seconds{model="qwen3-cs:latest"}' not in got


def test_gpu_metrics_from_nvidia_smi(ollama, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '0, NVIDIA H100 80GB HBM3, 37, 4096, 81559, 41'\necho '1, NVIDIA H100 80GB HBM3, [N/A], 0, 81559, 30'\n")
    fake.chmod(0o755)
    run = run_script("--config", str(config(tmp_path, ollama, nvidia_smi=str(fake))))
    assert run.returncode == 0, run.stderr
    got = samples((tmp_path / "ollama.prom").read_text())
    gpu0 = '{gpu="0",name="NVIDIA H100 80GB HBM3"}'
    assert got["ollama_gpu_count"] == 2 and got["ollama_gpu_query_success"] == 1
    assert got["ollama_gpu_utilization_ratio" + gpu0] == 0.37
    assert got["ollama_gpu_memory_used_bytes" + gpu0] == 4096 * 1024 * 1024
    assert got["ollama_gpu_memory_total_bytes" + gpu0] == 81559 * 1024 * 1024
    assert got["ollama_gpu_temperature_celsius" + gpu0] == 41
    assert 'ollama_gpu_utilization_ratio{gpu="1",name="NVIDIA H100 80GB HBM3"}' not in got  # [N/A] is left out


def test_failing_nvidia_smi_is_reported(ollama, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver' >&2\nexit 9\n")
    fake.chmod(0o755)
    got = samples(metrics.render(metrics.collect(json.loads(config(tmp_path, ollama, nvidia_smi=str(fake)).read_text()))))
    assert got["ollama_gpu_query_success"] == 0 and got["ollama_gpu_count"] == 0


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "ollama.prom"
    target.write_text("old 1\n")
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        # At the moment of the rename the old file is still whole and the new one complete beside it.
        seen.append((pathlib.Path(dst).read_text(), pathlib.Path(src).read_text(), pathlib.Path(src).name,
                     oct(os.stat(src).st_mode & 0o777)))
        real_replace(src, dst)

    monkeypatch.setattr(metrics.os, "replace", replace)
    metrics.write_atomic(str(target), "new 2\n")
    assert seen == [("old 1\n", "new 2\n", seen[0][2], "0o644")]
    assert seen[0][2].startswith(".ollama.prom.") and not seen[0][2].endswith(".prom")  # node exporter reads *.prom only
    assert target.read_text() == "new 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ollama.prom"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "ollama.prom"
    target.write_text("old 1\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(metrics.os, "replace", boom)
    with pytest.raises(OSError):
        metrics.write_atomic(str(target), "new 2\n")
    assert target.read_text() == "old 1\n" and sorted(p.name for p in tmp_path.iterdir()) == ["ollama.prom"]


@pytest.mark.parametrize("change, message", [
    ({}, None),
    ({"url": "ftp://x"}, "url must be an http(s) URL"),
    ({"requests": 0}, "requests must be >= 1"),
    ({"timeout_s": "5"}, "timeout_s is missing"),
    ({"textfile": "relative.prom"}, "textfile must be an absolute path"),
    ({"textfile": "/var/lib/prometheus/node-exporter/ollama.txt"}, "ending in .prom"),
    ({"pinned_models": [{"name": "x"}]}, "needs a name and a digest"),
])
def test_check_config(tmp_path, change, message):
    run = run_script("--check-config", str(config(tmp_path, "http://127.0.0.1:11434", **change)))
    if message is None:
        assert run.returncode == 0, run.stderr
    else:
        assert run.returncode == 2 and message in run.stderr, run.stderr


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T21:38:31Z", 1795642711),
    ("2026-11-25T22:38:31.5+01:00", 1795642711.5),
    ("2318-01-01T00:00:00Z", 10981785600),
    ("0001-01-01T00:00:00Z", -62135596800),
    ("soon", None),
])
def test_parse_time(text, expected):
    assert metrics.parse_time(text) == expected
