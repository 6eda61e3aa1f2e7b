#!/usr/bin/env python3
"""Benchmark of the site mirror and of rebuild.yml (not a test: pytest does not collect bench_*.py).

    .venv/bin/molecule converge -s rebuild        # the rebuild scenario's hosts, converged, kept
    .venv/bin/python tests/bench/bench_mirror.py [--size-gib 2] [--nodes 3]

Prints ratios from one run:
  1. fan-out: a model blob of 256 MiB pulled from the mirror by 1 node, then by `nodes` nodes at once
     (bare containers of the node image on the scenario's network, each reading the blob the way
     Ollama's downloader does: GET, Location, then the body, hashed as it arrives): wall time
     N nodes / 1 node, goal <= 1.5x;
  2. rebuild: rb-node2 recreated bare, `site.yml -l rb-node2` (its first converge) timed, recreated
     bare again, `playbooks/rebuild.yml -l rb-node2` timed: rebuild / first converge;
  3. idempotent mirror: `playbooks/mirror.yml` with a model of `size-gib` GiB added (first fill
     timed), then again: the re-run's seconds and its changed count (goal: 0 changed, seconds: no
     blob re-hashed or re-copied).
The nodes run the ollama STAND-IN (tests/ollama_standin, a test double); the mirror is nginx.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule/rebuild/tests"))
# Molecule keeps a converged scenario's inventory and SSH key in ~/.ansible/tmp/molecule.<id>.rebuild.
MOLECULE = max(pathlib.Path.home().glob(".ansible/tmp/molecule.*.rebuild"), key=lambda p: p.stat().st_mtime,
               default=pathlib.Path.home() / ".ansible/tmp/molecule.rebuild")
os.environ.setdefault("MOLECULE_INVENTORY_FILE", str(MOLECULE / "inventory/ansible_inventory.yml"))
os.environ.setdefault("MOLECULE_EPHEMERAL_DIRECTORY", str(MOLECULE))
os.environ.setdefault("OLLAMA_FLEET_CACHE", str(ROOT / ".cache"))

from test_rebuild import BUNDLE, FIXTURES, MIRROR_IP, pins, platform, recreate_bare  # noqa: E402

sys.path.insert(0, str(ROOT / "molecule/shared"))
from playbook import recap, run_playbook  # noqa: E402

CACHE = ROOT / ".cache"
PULL = r"""
import hashlib, sys, urllib.request
url, want = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(url) as r:
    assert r.headers.get("Location"), "no Location"
    h = hashlib.sha256()
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
assert h.hexdigest() == want, "digest"
"""


def build_model(name: str, size: int, out: pathlib.Path) -> tuple[str, str]:
    """(manifest digest, largest blob hex) of a stand-in model of `size` bytes in bundle `out`."""
    subprocess.run([sys.executable, str(ROOT / "tests/ollama_standin/build_model.py"), "--name", name, "--variant", "instruct",
                    "--size", str(size), "--seed", "11", "--out", str(out)], check=True, capture_output=True)
    model, tag = name.rsplit(":", 1)
    data = (out / "manifests/registry.ollama.ai/library" / model / tag).read_bytes()
    body = json.loads(data)
    return hashlib.sha256(data).hexdigest(), max(body["layers"], key=lambda b: int(b["size"]))["digest"].split(":")[1]


def fill(models: list[dict]) -> tuple[float, int]:
    started = time.monotonic()
    rc, out = run_playbook("playbooks/mirror.yml", "-e", json.dumps({"ollama_mirror_models": models}), env=FIXTURES, timeout=3600)
    wall = time.monotonic() - started
    assert rc == 0, out[-3000:]
    return wall, sum(c.get("changed", 0) for c in recap(out).values())


def pullers(count: int) -> list[str]:
    node = platform("rb-node1")
    names = [f"rb-bench{i}" for i in range(count)]
    for i, name in enumerate(names):
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "run", "-d", "--name", name, "--label", "owner=molecule", "--network", node["networks"][0]["name"],
                        "--ip", f"172.28.70.{41 + i}", node["image"], "sleep", "infinity"], check=True, capture_output=True)
    return names


def fan_out(names: list[str], url: str, want: str) -> float:
    started = time.monotonic()
    procs = [subprocess.Popen(["docker", "exec", n, "python3", "-c", PULL, url, want]) for n in names]
    assert all(p.wait(timeout=1800) == 0 for p in procs), "a pull failed"
    return time.monotonic() - started


def timed(playbook: str) -> float:
    recreate_bare("rb-node2")
    started = time.monotonic()
    rc, out = run_playbook(playbook, "-l", "rb-node2", "-e", "ollama_verify_requests=3", env=FIXTURES, timeout=3600)
    assert rc == 0, out[-3000:]
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--size-gib", type=float, default=2.0)
    args = parser.parse_args()
    base = [{**p, "bundle": str(BUNDLE)} for p in pins()]

    # 1. fan-out. The mirror's firewall admits the scenario's nodes only: the pullers' addresses
    #    are opened for the run (firewall.yml with the whole network), and closed again after it.
    bundle = CACHE / "models-bench-fanout"
    digest, blob = build_model("benchfan:256m", 256 << 20, bundle)
    rc, out = run_playbook("playbooks/firewall.yml", "-l", "rb-lb2", "-e",
                           json.dumps({"firewall_mirror_sources": ["172.28.70.0/24"]}), env=FIXTURES)
    assert rc == 0, out[-2000:]
    fill(base + [{"name": "benchfan:256m", "digest": "sha256:" + digest, "bundle": str(bundle)}])
    names = pullers(args.nodes)
    url = f"http://{MIRROR_IP}:8080/v2/library/benchfan/blobs/sha256:{blob}"
    try:
        one = fan_out(names[:1], url, blob)
        many = fan_out(names, url, blob)
    finally:
        for n in names:
            subprocess.run(["docker", "rm", "-f", n], capture_output=True)
        run_playbook("playbooks/firewall.yml", "-l", "rb-lb2", env=FIXTURES)
    print(f"fan-out of 256 MiB from the mirror: 1 node {one:.1f}s, {args.nodes} nodes {many:.1f}s: "
          f"{many / one:.2f}x (goal <= 1.5x)")

    # 2. rebuild against a first converge of the same bare node.
    first = timed("site.yml")
    rebuild = timed("playbooks/rebuild.yml")
    print(f"rb-node2 bare -> serving: first converge (site.yml -l) {first:.1f}s, rebuild.yml {rebuild:.1f}s: "
          f"{rebuild / first:.2f}x [nodes: ollama STAND-IN]")

    # 3. the mirror's idempotent re-run with a multi-GB blob in place.
    big = CACHE / "models-bench-big"
    size = int(args.size_gib * (1 << 30))
    digest, _blob = build_model("benchbig:big", size, big)
    models = base + [{"name": "benchbig:big", "digest": "sha256:" + digest, "bundle": str(big)}]
    first_fill, _ = fill(models)
    again, changed = fill(models)
    print(f"mirror.yml with a {args.size_gib:g} GiB blob: first fill {first_fill:.1f}s, re-run {again:.1f}s with "
          f"{changed} changed (goal: 0 changed, seconds)")


if __name__ == "__main__":
    main()
