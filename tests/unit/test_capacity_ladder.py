"""scripts/capacity_ladder.py: its bounds and its suggestion, then two short ladders against the
ollama STAND-IN (tests/ollama_standin, a test double of Ollama) at OLLAMA_NUM_PARALLEL 1 and 2,
slowed by its knobs (first token 200 ms, 20 tokens/s) so that a request beyond the slots queues
for a whole answer: the two settings must give different answers (1 and 2 customers)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tarfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import capacity_ladder as ladder  # noqa: E402

STANDIN = ROOT / "tests/ollama_standin"


def test_bounds_are_enforced():
    for bad in (["--levels", "4,2"], ["--levels", ",".join(str(i) for i in range(1, 14))], ["--levels", "1,300"],
                ["--duration-s", "301"], ["--max-requests", "0"], ["--stop-after", "0"]):
        with pytest.raises(SystemExit):
            ladder.parse_args(["--url", "http://127.0.0.1:1", *bad])
    args = ladder.parse_args(["--url", "http://127.0.0.1:1"])
    assert args.level_list == [1, 2, 4, 6, 8, 12, 16] and args.duration_s <= 300 and args.max_requests <= 2000


def test_the_shipped_prompts_parse():
    prompts = ladder.read_prompts(ladder.os.path.join(ladder.HERE, "capacity_prompts.jsonl"))
    assert len(prompts) >= 20 and all(p[-1]["role"] == "user" for p in prompts)


def test_front_queue_from_haproxys_exporter():
    text = ('# TYPE haproxy_backend_current_queue gauge\nhaproxy_backend_current_queue{proxy="ollama_nodes"} 3\n'
            'haproxy_backend_current_queue{proxy="stats"} 0\nhaproxy_server_current_queue{proxy="x"} 9\n')
    assert ladder.queue_from_metrics(text) == 3
    assert ladder.queue_from_metrics("haproxy_up 1\n") is None


def level(c, p95, ok=True):
    return {"concurrency": c, "ttft_p95_s": p95, "ttft_p50_s": 0.3, "tokens_per_s": 10.0 * c,
            "stream_tokens_per_s_p50": 10.0, "within_limit": ok}


def test_suggestion_tells_slots_from_speed():
    levels = [level(1, 0.3), level(2, 0.3), level(4, 2.0, False)]
    slots = ladder.suggest(levels, 2, nodes=1, num_parallel=2, limit_s=1.5)
    assert slots["slot_bound"] and slots["ollama_num_parallel"] == 4 and slots["haproxy_api_key_max_in_flight"] == 2
    speed = ladder.suggest(levels, 2, nodes=1, num_parallel=8, limit_s=1.5)
    assert not speed["slot_bound"] and speed["ollama_num_parallel"] == 2
    assert ladder.suggest([level(1, 3.0, False)], 0, 1, 2, 1.5)["customers"] == 0


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ladder")
    subprocess.run([sys.executable, str(STANDIN / "build_release.py"), "--version", "0.33.0", "--out", str(tmp / "rel")],
                   check=True, capture_output=True)
    with tarfile.open(str(tmp / "rel" / "ollama-linux-amd64.tgz")) as tar:
        tar.extractall(str(tmp / "inst"))
    subprocess.run([sys.executable, str(STANDIN / "build_model.py"), "--name", "qwen3-cs", "--variant", "instruct",
                    "--out", str(tmp / "models")], check=True, capture_output=True)
    return tmp


def serve(tmp, parallel):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OLLAMA_HOST="127.0.0.1:%d" % port, OLLAMA_MODELS=str(tmp / "models"), HOME=str(tmp),
               OLLAMA_NUM_PARALLEL=str(parallel), OLLAMA_STANDIN_CONTROL=str(tmp / "none.json"),
               OLLAMA_STANDIN_FIRST_TOKEN_MS="200", OLLAMA_STANDIN_TOKENS_PER_SECOND="20")
    proc = subprocess.Popen([str(tmp / "inst/bin/ollama"), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 15
    while ladder.probe.server_version(url, 0.5).startswith("<"):
        assert time.monotonic() < deadline and proc.poll() is None, "stand-in did not start"
        time.sleep(0.05)
    return proc, url


def test_two_settings_of_ollama_num_parallel_give_two_answers(binary, tmp_path, capsys):
    answers = {}
    for parallel in (1, 2):
        proc, url = serve(binary, parallel)
        try:
            out = tmp_path / str(parallel)
            rc = ladder.main(["--url", url, "--levels", "1,2,3", "--duration-s", "3", "--max-requests", "40",
                              "--num-predict", "30", "--num-parallel", str(parallel), "--out", str(out)])
        finally:
            proc.terminate()
            proc.wait(10)
        assert rc == 0
        report = json.loads((out / "capacity.json").read_text())
        assert report["standin"] is True and "STAND-IN" in report["origin"]
        assert all(lv["errors"] == 0 for lv in report["levels"])
        answers[parallel] = report["answer"]
        printed = capsys.readouterr().out
        assert "Answer (ollama STAND-IN): %d customers at once" % report["answer"] in printed
        over = [lv for lv in report["levels"] if not lv["within_limit"]]
        assert over and over[0]["ttft_p95_s"] > 1.5  # beyond the slots, a request waits for a whole answer
    assert answers == {1: 1, 2: 2}
