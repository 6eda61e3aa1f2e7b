#!/usr/bin/env python3
"""Benchmark: what a converged re-run of site.yml costs on the lab (not a test: pytest does not
collect bench_*.py). Run from the repository root:

    .venv/bin/python tests/bench/bench_site_rerun.py

It removes the lab, creates it bare (scripts/lab.sh create: containers, SSH, stand-in fixtures),
and times `ansible-playbook -i inventories/lab site.yml` over SSH, as a site runs it:
  1. first converge, 4 hosts      2. converged re-run, 4 hosts      3. converged re-run, 1 host
and prints, from this one run: re-run / first converge, and re-run 4 hosts / 1 host, with the
roles that cost most in the re-run (ansible.posix.profile_roles). The lab's Ollama is the
stand-in (tests/ollama_standin), a test double: the figures are the deployment's, not a model's.
The lab is left up afterwards (scripts/lab.sh down removes it).
"""

from __future__ import annotations

import os
import pathlib
import re
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
ONE_HOST = "lab-node1"


CPU: dict[str, float] = {}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def site(*args: str) -> tuple[float, str]:
    env = {**os.environ, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_roles", "ANSIBLE_FORCE_COLOR": "false"}
    cpu = children_cpu()
    start = time.monotonic()
    run = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventories/lab", "site.yml", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    CPU[" ".join(args) or "all"] = children_cpu() - cpu
    if run.returncode != 0:
        sys.exit(f"site.yml {' '.join(args)} failed:\n{run.stdout[-4000:]}{run.stderr[-2000:]}")
    return took, run.stdout


def changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", out, re.M))


def top_roles(out: str, n: int = 5) -> str:
    rows = re.findall(r"^(\S+) -+ (\d+\.\d+)s$", out, re.M)
    return ", ".join(f"{name} {float(secs):.1f}s" for name, secs in rows[:n])


def main() -> int:
    for cmd in (["scripts/lab.sh", "down"], ["scripts/lab.sh", "create"]):
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    first, _ = site()
    rerun, out4 = site()
    one, out1 = site("--limit", ONE_HOST)
    print("site.yml on the lab over SSH (Ollama = stand-in test double)")
    print(f"  first converge, 4 hosts     {first:7.1f} s")
    print(f"  converged re-run, 4 hosts   {rerun:7.1f} s   changed={changed(out4)}")
    print(f"  converged re-run, 1 host    {one:7.1f} s   changed={changed(out1)}  ({ONE_HOST})")
    print(f"  re-run / first converge     {rerun / first:7.2f}    (goal <= 0.30)")
    print(f"  re-run 4 hosts / 1 host     {rerun / one:7.2f}    (goal <= 1.50)")
    print(f"  costliest roles in the 4-host re-run: {top_roles(out4)}")
    # What bounds the 4-host re-run: Ansible's own CPU on the controller (its processes, not the hosts').
    cpu4, cpu1 = CPU["all"], CPU[f"--limit {ONE_HOST}"]
    print(f"  controller CPU (ansible)    {cpu4:7.1f} s for 4 hosts, {cpu1:.1f} s for 1 host; "
          f"{os.cpu_count()} cores -> busy {cpu4 / (rerun * os.cpu_count()):.0%} of the 4-host re-run")
    return 0 if changed(out4) == 0 and changed(out1) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
