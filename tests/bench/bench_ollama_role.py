#!/usr/bin/env python3
"""Benchmark of the `ollama` role (not a test: pytest does not collect bench_*.py).

    .venv/bin/python tests/bench/bench_ollama_role.py [--image ollama-fleet/debian13:current] [--keep]

Creates 4 systemd containers (upg-bench-1..4) on its own Docker network 172.28.45.0/24, builds a
stand-in release on the controller, and times playbooks/ollama.yml:
  1. first converge on 1 host            2. idempotent re-run on 1 host
  3. first converge on the 3 others      4. idempotent re-run on all 4 hosts
It prints two ratios from this one run: first converge / re-run (1 host) and re-run 4 hosts / 1 host.
It also proves from the per-task results (ansible.posix.json callback) that a re-run changes
nothing and never runs a task that transfers, downloads, hashes or unpacks the archive.
The containers and the network are removed afterwards (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
NETWORK, SUBNET = "upg-bench", "172.28.45.0/24"
HOSTS = {f"upg-bench-{i}": f"172.28.45.{10 + i}" for i in range(1, 5)}
VERSION = "0.33.0"
# Tasks of the role that move or read the archive; a re-run must run none of them.
ARCHIVE_TASKS = (
    "Read the release's published checksums",
    "Read the published checksums on the controller",
    "Hash the archive on the controller",
    "Copy the verified archive from the controller",
    "Download the archive and verify its sha256",
    "Unpack ollama-linux-",
)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def start_containers(image: str) -> None:
    sh("docker", "network", "create", "--subnet", SUBNET, NETWORK)
    for name, ip in HOSTS.items():
        sh("docker", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", ip,
           "--cgroupns", "host", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
           "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/tmp",
           image, "/lib/systemd/systemd", "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1")
    for name in HOSTS:
        for _ in range(60):
            state = sh("docker", "exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(1)


def cleanup() -> None:
    for name in HOSTS:
        sh("docker", "rm", "-f", name, check=False)
    sh("docker", "network", "rm", NETWORK, check=False)


def write_inventory(work: pathlib.Path, releases: pathlib.Path) -> pathlib.Path:
    hosts = {name: {"ollama_bind_address": ip} for name, ip in HOSTS.items()}
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "ollama_version": VERSION,
                "ollama_source": "controller",
                "ollama_controller_dir": str(releases / VERSION),
                "ollama_start_timeout": 60,
            },
            "children": {"ollama_nodes": {"hosts": hosts}},
        }
    }
    path = work / "hosts.json"
    path.write_text(json.dumps(inventory))
    return path


def run_role(inventory: pathlib.Path, limit: str) -> tuple[float, dict]:
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORCE_COLOR="false",
               PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}")
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), "--limit", limit, "playbooks/ollama.yml"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"ansible-playbook --limit {limit} failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def summarise(report: dict) -> dict:
    """Changed tasks, archive tasks that actually ran, and any result that carries a file checksum."""
    changed, archive_ran, hashed = [], [], []
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            for host, result in task["hosts"].items():
                if result.get("changed"):
                    changed.append(f"{host}: {name}")
                if any(t in name for t in ARCHIVE_TASKS) and not result.get("skipped"):
                    archive_ran.append(f"{host}: {name}")
                if "checksum" in (result.get("stat") or {}):
                    hashed.append(f"{host}: {name}")
    return {"changed": changed, "archive_tasks_run": archive_ran, "checksums_computed": hashed,
            "hosts": sorted(report["stats"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="ollama-fleet/debian13:current")
    ap.add_argument("--keep", action="store_true", help="leave the containers running")
    args = ap.parse_args()
    one, all_hosts = "upg-bench-1", ",".join(HOSTS)
    others = ",".join(h for h in HOSTS if h != one)
    cleanup()
    with tempfile.TemporaryDirectory(prefix="bench-ollama-") as tmp:
        work = pathlib.Path(tmp)
        releases = work / "releases"
        sh(sys.executable, str(ROOT / "tests/ollama_standin/build_release.py"), "--version", VERSION,
           "--out", str(releases / VERSION))
        inventory = write_inventory(work, releases)
        try:
            start_containers(args.image)
            t_first1, first = run_role(inventory, one)
            t_rerun1, rerun1 = run_role(inventory, one)
            t_first3, _ = run_role(inventory, others)
            t_rerun4, rerun4 = run_role(inventory, all_hosts)
        finally:
            if not args.keep:
                cleanup()
    first_s, rerun1_s, rerun4_s = summarise(first), summarise(rerun1), summarise(rerun4)
    print("ollama role benchmark (stand-in release %s from the ollama-fleet test fixture, image %s)" % (VERSION, args.image))
    print(f"  first converge, 1 host        {t_first1:7.1f} s  ({len(first_s['changed'])} changed task results,"
          f" {len(first_s['archive_tasks_run'])} archive task results, {len(first_s['checksums_computed'])} checksums)")
    print(f"  re-run, 1 host                {t_rerun1:7.1f} s  ({len(rerun1_s['changed'])} changed,"
          f" {len(rerun1_s['archive_tasks_run'])} archive tasks run, {len(rerun1_s['checksums_computed'])} checksums)")
    print(f"  first converge, 3 more hosts  {t_first3:7.1f} s")
    print(f"  re-run, 4 hosts               {t_rerun4:7.1f} s  ({len(rerun4_s['changed'])} changed,"
          f" {len(rerun4_s['archive_tasks_run'])} archive tasks run, {len(rerun4_s['checksums_computed'])} checksums)")
    print(f"RATIO first-converge / re-run (1 host): {t_first1 / t_rerun1:.2f}")
    print(f"RATIO re-run 4 hosts / re-run 1 host:   {t_rerun4 / t_rerun1:.2f}")
    problems = []
    if not first_s["archive_tasks_run"]:
        problems.append("the first converge ran no archive task: the check below would prove nothing")
    for label, s in (("re-run 1 host", rerun1_s), ("re-run 4 hosts", rerun4_s)):
        for key in ("changed", "archive_tasks_run", "checksums_computed"):
            if s[key]:
                problems.append(f"{label}: {key}: {s[key]}")
    if rerun4_s["hosts"] != sorted(HOSTS):
        problems.append(f"re-run 4 hosts covered {rerun4_s['hosts']}")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("OK: re-runs changed nothing, downloaded/copied/unpacked nothing and computed no archive checksum")
    return 0


if __name__ == "__main__":
    sys.exit(main())
