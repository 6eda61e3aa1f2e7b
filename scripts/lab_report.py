#!/usr/bin/env python3
"""Print what the lab deployed: one row per lab container, read from the containers themselves.

The lab runs the Ollama stand-in (tests/ollama_standin), never real Ollama: the versions and
models it reports come from that test double, and the report says so.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import subprocess
import sys
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]

SERVICES = ("ollama", "haproxy", "keepalived")


def inventory() -> dict:
    out = subprocess.run(
        [".venv/bin/ansible-inventory", "-i", "inventories/lab", "--list"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def in_container(name: str, script: str) -> str:
    res = subprocess.run(["docker", "exec", name, "sh", "-c", script], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else ""


def ollama_api(name: str, address: str, path: str) -> dict | None:
    for base in (f"http://{address}:11434", "http://127.0.0.1:11434"):
        body = in_container(name, f"curl -fsS --max-time 3 {base}{path}")
        if body:
            return json.loads(body)
    return None


def main() -> int:
    inv = inventory()
    groups = {g: set(v.get("hosts", [])) for g, v in inv.items() if g != "_meta"}
    rows = []
    for name, hv in sorted(inv["_meta"]["hostvars"].items()):
        os_name = in_container(name, ". /etc/os-release && echo $PRETTY_NAME") or "unreachable"
        states = []
        for svc in SERVICES:
            state = in_container(name, f"systemctl is-active {svc} 2>/dev/null || true")
            if state and state != "inactive":
                states.append(f"{svc}={state}")
        version = ollama_api(name, hv["ansible_host"], "/api/version")
        tags = ollama_api(name, hv["ansible_host"], "/api/tags") if version else None
        models = ", ".join(f"{m['name']}@{m['digest'][:12]}" for m in (tags or {}).get("models", []))
        rows.append((
            name,
            ",".join(sorted(g for g, hosts in groups.items() if name in hosts)),
            hv["ansible_host"],
            os_name,
            " ".join(states) or "-",
            version["version"] if version else "-",
            models or "-",
        ))
    header = ("host", "groups", "address", "os", "services", "ollama", "models")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("\nollama-fleet lab (Docker network ollama-fleet-lab)")
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    if any(r[5] != "-" for r in rows):
        print("\nNote: the lab's Ollama is the stand-in test double from tests/ollama_standin, not real Ollama;"
              " its versions, models and answers are synthetic.")
    front_ok = front(inv, groups)
    prometheus_ok = prometheus(inv, groups)
    return 0 if all(r[3] != "unreachable" for r in rows) and front_ok and prometheus_ok else 1


def handed(hv: dict, value):
    """A value as the inventory hands it over: `{{ name }}` (e.g. a port set once as fleet_*)
    is that variable's value on the host, followed until a literal."""
    seen = set()
    while isinstance(value, str) and re.fullmatch(r"\{\{\s*[a-z_][a-z0-9_]*\s*\}\}", value.strip()) and value not in seen:
        seen.add(value)
        value = hv.get(value.strip()[2:-2].strip(), value)
    return value


def prometheus_urls(inv: dict, groups: dict) -> list[tuple[str, str]]:
    """(host, URL) of each Prometheus the inventory deploys (role prometheus on monitoring_nodes):
    its listening address when the inventory sets one, else the host's address; port 9090 unless set."""
    urls = []
    for name in sorted(groups.get("monitoring_nodes", set())):
        hv = inv["_meta"]["hostvars"][name]
        address = str(hv.get("prometheus_listen_address") or "")
        if not address or "{" in address:
            address = hv["ansible_host"]
        port = handed(hv, hv.get("prometheus_port", 9090))
        urls.append((name, f"http://{'[' + address + ']' if ':' in address else address}:{port}"))
    return urls


def prometheus(inv: dict, groups: dict) -> bool:
    """Print the URL of each Prometheus the lab has (none without monitoring_nodes); check it is ready."""
    ok = True
    for name, url in prometheus_urls(inv, groups):
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=10) as response:
                state = "ready" if response.status == 200 else f"HTTP {response.status}"
        except OSError as exc:
            state = f"NOT READY ({exc})"
        ok = ok and state == "ready"
        print(f"\nPrometheus (on {name}, alert rules of the fleet): {url}  -> {state}")
        print(f"  alerts: {url}/alerts   API: curl -sS {url}/api/v1/alerts")
        print("  Grafana: import roles/prometheus/files/ollama-fleet-dashboard.json with this Prometheus as its data source")
    return ok


def front(inv: dict, groups: dict) -> bool:
    """Print the front's URL, CA, a key and a curl that works from the controller; try it."""
    lbs = sorted(groups.get("lb_nodes", set()))
    if not lbs:
        return True
    hv = inv["_meta"]["hostvars"][lbs[0]]
    vip = str(hv.get("keepalived_vip_cidr", "")).split("/")[0]
    tls = hv.get("haproxy_tls", True) in (True, "true", "True")
    port = hv.get("haproxy_bind_port", 443 if tls else 80)
    url = f"{'https' if tls else 'http'}://{vip}" + ("" if port in (443, "443") and tls else f":{port}")
    ca = ROOT / ".cache" / "lab" / "tls" / "ca.crt"
    key_file = ROOT / ".cache" / "lab" / "api-key"
    key = key_file.read_text().strip() if key_file.is_file() else ""
    holder = [name for name in lbs if in_container(name, f"ip -o -4 addr show | grep -F ' {vip}/'")]
    curl = ["curl", "-sS", "--fail-with-body", "--cacert", str(ca), "-H", f"Authorization: Bearer {key}",
            f"{url}/api/chat", "-d", '{"model": "qwen3-cs", "stream": false, "messages": [{"role": "user", "content": "Hello"}]}']
    print(f"\nFront (virtual IP, held by {', '.join(holder) or 'nobody'}): {url}")
    print(f"CA certificate: {ca}")
    print(f"API key (name lab, in {key_file}): {key}")
    print("Try it:\n  " + " ".join(shlex.quote(c) for c in curl))
    res = subprocess.run(curl, capture_output=True, text=True, timeout=60)
    print("  -> " + ("works" if res.returncode == 0 else f"FAILED (curl exit {res.returncode}): {(res.stdout + res.stderr).strip()[:300]}"))
    return res.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
