"""Disaster recovery and the site mirror (playbooks/rebuild.yml, role ollama_mirror), on the ha
topology with rb-lb2 also the site mirror. The nodes run the ollama STAND-IN (tests/ollama_standin,
a test double of Ollama, not Ollama), slowed to 15 tokens/s so streams are in flight all along.
Traffic goes only to this scenario's containers.

The tests run in order and each starts from the state the one before left:
1. the converged nodes took the release and every blob of both pins from the mirror (its access
   log), and the controller fetched no blob from it;
2. rebuild.yml refuses an internet source (ollama_source: release) before it touches anything:
   the node stays UP on both load balancers;
3. rb-node2's container is destroyed and recreated bare from its image (same name, address and
   flags as molecule.yml, SSH provisioned by scripts/lab-ssh.sh); rebuild.yml -l rb-node2 under 4
   streaming clients through the virtual IP: 0 failed requests, the node serves the pinned digests
   and is UP on both load balancers, and takes requests again;
4. every byte of the rebuilt node's release and model blobs came from the mirror (the access log
   sums, per blob, at least its size for rb-node2's address; the pins are not on any other path);
5. fan-out: both nodes pull a 64 MiB model from the mirror at once: each node's bytes of that blob
   in the mirror's log equal its size once (no second download), the controller's address fetched
   none, and each node's blob hashes to its digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import threading
import time

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import LBS, NODES, ROOT, Load, client, chat_once, holder, servers, standin, sudo, wait_status  # noqa: E402
from playbook import run_playbook  # noqa: E402

testinfra_hosts = [f"ansible://{sorted(NODES)[0]}"]

SCENARIO = pathlib.Path(__file__).resolve().parents[1]
MIRROR = "rb-lb2"
MIRROR_IP = "172.28.70.22"
CONTROLLER_IP = "172.28.70.1"
VICTIM = "rb-node2"
ACCESS_LOG = "/var/log/nginx/ollama-mirror.access.log"
FIXTURES = {
    "OLLAMA_FLEET_RELEASE_DIR": str(ROOT / ".cache/releases"),
    "OLLAMA_FLEET_MODELS_BUNDLE": str(ROOT / ".cache/models-bundle"),
    "OLLAMA_FLEET_CACHE": str(ROOT / ".cache"),
}
BUNDLE = ROOT / ".cache/models-bundle"
FANOUT = ROOT / ".cache/models-fanout"
FAST_VERIFY = ("-e", "ollama_verify_requests=3")
LOG_LINE = re.compile(r'^(\S+) \S+ \S+ \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+)')


def pins() -> list[dict]:
    """The lab's pins (the scenario's nodes install them), from the lab overlay."""
    overlay = yaml.safe_load((ROOT / "inventories/lab/group_vars/ollama_nodes/10-lab.yml").read_text())
    return [{"name": m["name"], "digest": m["digest"]} for m in overlay["ollama_models_list"]]


def manifest(bundle: pathlib.Path, name: str) -> tuple[bytes, dict]:
    model, tag = name.rsplit(":", 1)
    path = bundle / "manifests/registry.ollama.ai/library" / model / tag
    data = path.read_bytes()
    return data, json.loads(data)


def blobs(bundle: pathlib.Path, name: str) -> dict[str, int]:
    """{hex: size} of a bundled model's config and layers."""
    _data, body = manifest(bundle, name)
    return {b["digest"].split(":")[1]: int(b["size"]) for b in [body["config"], *body["layers"]]}


def access_log() -> list[tuple[str, str, str, int, int]]:
    """(client address, method, path, status, body bytes) of each line of the mirror's access log."""
    out = []
    for line in sudo(MIRROR, f"cat {ACCESS_LOG}").splitlines():
        m = LOG_LINE.match(line)
        if m:
            out.append((m[1], m[2], m[3], int(m[4]), int(m[5])))
    return out


def blob_bytes(lines, address: str) -> dict[str, int]:
    """{hex: body bytes} of the blob GETs from `address`."""
    got: dict[str, int] = {}
    for addr, method, path, status, size in lines:
        m = re.search(r"/blobs/sha256:([0-9a-f]{64})$", path)
        if addr == address and method == "GET" and m and status in (200, 206):
            got[m[1]] = got.get(m[1], 0) + size
    return got


def tags(name: str) -> dict[str, str]:
    body = json.loads(sudo(name, f"curl -sf http://{NODES[name]}:11434/api/tags"))
    return {m["name"]: m["digest"].split(":")[-1] for m in body["models"]}


def platform(name: str) -> dict:
    return next(p for p in yaml.safe_load((SCENARIO / "molecule.yml").read_text())["platforms"] if p["name"] == name)


def recreate_bare(name: str) -> None:
    """docker rm -f, then docker run from the image with molecule.yml's flags; then SSH as a site's
    installer leaves it (scripts/lab-ssh.sh, as molecule/shared/ssh.yml)."""
    p = platform(name)
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    args = ["docker", "run", "-d", "--name", name, "--hostname", name, "--label", "owner=molecule",
            "--cgroupns", p["cgroupns_mode"]]
    for cap in p.get("capabilities", []):
        args += ["--cap-add", cap]
    for key, value in (p.get("sysctls") or {}).items():
        args += ["--sysctl", f"{key}={value}"]
    for volume in p.get("volumes", []):
        args += ["-v", volume]
    for tmpfs in p.get("tmpfs", []):
        args += ["--tmpfs", tmpfs]
    net = p["networks"][0]
    args += ["--network", net["name"], "--ip", net["ipv4_address"], p["image"], *p["command"].split()]
    subprocess.run(args, check=True, capture_output=True)
    ssh = subprocess.run([str(ROOT / "scripts/lab-ssh.sh"), os.environ["MOLECULE_EPHEMERAL_DIRECTORY"] + "/ssh",
                          f"{name}={net['ipv4_address']}"], capture_output=True, text=True, timeout=150)
    assert ssh.returncode == 0, ssh.stdout + ssh.stderr


@pytest.fixture(scope="module", autouse=True)
def slow_nodes():
    for name in NODES:
        standin(name, tokens_per_second=15)
    yield
    for name in NODES:
        try:
            standin(name)
        except Exception:  # noqa: BLE001 - a failed test may have left the node without SSH
            pass


def test_converged_nodes_took_everything_from_the_mirror():
    lines = access_log()
    want = {}
    for pin in pins():
        want.update(blobs(BUNDLE, pin["name"]))
    for name, address in NODES.items():
        assert tags(name).items() >= {(p["name"], p["digest"].split(":")[1]) for p in pins()}, name
        got = blob_bytes(lines, address)
        short = {h: (got.get(h, 0), size) for h, size in want.items() if got.get(h, 0) < size}
        assert not short, f"{name} did not get these blobs from the mirror (bytes got, size): {short}"
        assert any(a == address and p.endswith(".tar.zst") and s == 200 for a, _m, p, s, _b in lines), f"{name}: no release from the mirror"
        assert not [n for n in tags(name) if n.startswith(MIRROR_IP)], f"{name} kept the mirror's model names"
    assert not blob_bytes(lines, CONTROLLER_IP), "the controller fetched blobs from the mirror"


def test_rebuild_refuses_an_internet_source():
    rc, out = run_playbook("playbooks/rebuild.yml", "-l", VICTIM, "-e", "ollama_source=release", env=FIXTURES)
    assert rc != 0 and "would download from the internet" in out, out[-2000:]
    for lb in LBS:
        assert servers(lb)[VICTIM]["status"].startswith("UP"), f"{VICTIM} left rotation on {lb} although nothing ran"


def test_rebuild_of_a_destroyed_node_loses_no_request():
    recreate_bare(VICTIM)
    for lb in LBS:
        wait_status(lb, VICTIM, "DOWN", timeout=30)
    assert sudo(VICTIM, "test -e /opt/ollama && echo yes || echo no").strip() == "no", "the recreated node is not bare"
    before = len(access_log())
    lb = holder()
    assert lb, "no load balancer holds the virtual IP"
    with Load(clients=4, limit_s=900) as load:
        time.sleep(3)
        started = time.monotonic()
        rc, out = run_playbook("playbooks/rebuild.yml", "-l", VICTIM, *FAST_VERIFY, env=FIXTURES, timeout=900)
        wall = time.monotonic() - started
        time.sleep(3)
    failed = load.failed()
    print(f"\nrebuild of {VICTIM}: {wall:.1f}s; {len(load.records)} requests through the virtual IP, {len(failed)} failed "
          f"({sorted({r[2] for r in failed})[:3]}) [nodes: ollama STAND-IN]")
    assert rc == 0, out[-4000:]
    assert len(load.records) > 10, "the load did not run"
    assert not failed, failed[:3]
    assert tags(VICTIM).items() >= {(p["name"], p["digest"].split(":")[1]) for p in pins()}
    for name in LBS:
        assert servers(name)[VICTIM]["status"].startswith("UP"), f"{VICTIM} not UP on {name}"
    stot = int(servers(lb)[VICTIM]["stot"])
    with client() as http:
        for _ in range(6):
            chat_once(http, num_predict=5)
    assert int(servers(lb)[VICTIM]["stot"]) > stot, f"{VICTIM} takes no request through the front"
    pytest.rebuild_log_from = before  # read by the next test


def test_rebuilt_node_took_every_byte_from_the_site():
    lines = access_log()[getattr(pytest, "rebuild_log_from", 0):]
    got = blob_bytes(lines, NODES[VICTIM])
    for pin in pins():
        for hex_, size in blobs(BUNDLE, pin["name"]).items():
            assert got.get(hex_, 0) >= size, f"{pin['name']}: blob {hex_[:12]} not (wholly) from the mirror: {got.get(hex_, 0)} of {size} bytes"
    release = [(s, b) for a, m, p, s, b in lines if a == NODES[VICTIM] and m == "GET" and p.endswith(".tar.zst")]
    assert release and release[-1][0] == 200, f"the release was not fetched from the mirror: {release}"
    size = (ROOT / ".cache/releases/0.33.0/ollama-linux-amd64.tar.zst").stat().st_size
    assert release[-1][1] == size, f"release bytes from the mirror {release[-1][1]} != archive size {size}"


# At most this much of the Location-only GET reaches the log per puller (socket buffers), far
# below a second copy of the blob.
PROBE_SLACK = 1 << 20


def test_fan_out_from_the_mirror():
    data, body = manifest(FANOUT, "fanout:64m")
    served = pins() + [{"name": "fanout:64m", "digest": "sha256:" + hashlib.sha256(data).hexdigest()}]
    mirror_models = [{**p, "bundle": str(FANOUT if p["name"] == "fanout:64m" else BUNDLE)} for p in served]
    # The fan-out model is not one of the site's pins: it comes from its own bundle, without the site bundle's lock.
    rc, out = run_playbook("playbooks/mirror.yml", "-e", json.dumps({"ollama_mirror_models": mirror_models, "ollama_mirror_bundle_lock": ""}),
                           env=FIXTURES)
    assert rc == 0, out[-3000:]
    layer = max(body["layers"], key=lambda b: int(b["size"]))
    hex_, size = layer["digest"].split(":")[1], int(layer["size"])
    before = len(access_log())
    name = f"{MIRROR_IP}:8080/library/fanout:64m"
    errors: list[str] = []

    def pull(node: str) -> None:
        try:
            sudo(node, f"curl -sf -X POST http://{NODES[node]}:11434/api/pull -d "
                       + shlex.quote(json.dumps({"model": name, "insecure": True, "stream": False})))
        except AssertionError as exc:
            errors.append(f"{node}: {exc}")

    started = time.monotonic()
    threads = [threading.Thread(target=pull, args=(n,)) for n in NODES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.monotonic() - started
    assert not errors, errors
    lines = access_log()[before:]
    print(f"\nfan-out of {size} bytes to {len(NODES)} nodes from the mirror: {wall:.1f}s")
    for node, address in NODES.items():
        # Once, whole: the blob's size, plus what nginx had sent of the first GET (the one that
        # only reads the Location, as real Ollama does) before the puller closed it.
        got = blob_bytes(lines, address).get(hex_, 0)
        assert size <= got <= size + PROBE_SLACK, f"{node}: {got} bytes of the blob, size {size}"
        on_node = sudo(node, f"sha256sum /usr/share/ollama/.ollama/models/blobs/sha256-{hex_}").split()[0]
        assert on_node == hex_, f"{node}: the blob does not hash to its digest"
        sudo(node, f"curl -sf -X DELETE http://{NODES[node]}:11434/api/delete -d " + shlex.quote(json.dumps({"model": name})))
    assert blob_bytes(lines, CONTROLLER_IP).get(hex_, 0) == 0, "the controller fetched the blob"
