"""Shared by the scenarios with a front (`ha`, `upgrade`): where the front is (read from the
scenario's inventory), its key and CA, HAProxy's runtime state through the admin socket, the
stand-in's knobs, and a bounded streaming load.

The nodes run the ollama STAND-IN (tests/ollama_standin, a test double of Ollama, not Ollama);
its control file (/etc/ollama-standin/control.json) slows generation so streams last seconds.
All traffic goes to the scenario's own containers."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pathlib
import shlex
import threading
import time

import httpx
import testinfra
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("OLLAMA_FLEET_CACHE", ROOT / ".cache")) / "lab"


def _inventory() -> tuple[tuple[str, ...], dict[str, str], str]:
    """The load balancers, the nodes with their addresses and the virtual IP, from the scenario's
    inventory (its groups) and host_vars (ansible_host, keepalived_vip_cidr)."""
    inventory = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"])
    groups = yaml.safe_load(inventory.read_text())

    def members(group: str) -> list[str]:
        return sorted((groups.get(group) or {}).get("hosts") or {})

    def host_vars(name: str) -> dict:
        return yaml.safe_load((inventory.parent / "host_vars" / f"{name}.yml").read_text()) or {}

    lbs = tuple(members("lb_nodes"))
    nodes = {name: host_vars(name)["ansible_host"] for name in members("ollama_nodes")}
    return lbs, nodes, host_vars(lbs[0])["keepalived_vip_cidr"].split("/")[0]


LBS, NODES, VIP = _inventory()
URL = f"https://{VIP}"
CA = str(CACHE / "tls" / "ca.crt")
KEY = (CACHE / "api-key").read_text().strip()
AUTH = {"Authorization": f"Bearer {KEY}"}
# The customer-service platform's key: the variant only, 2 requests at once (the lab overlay).
PLATFORM_KEY = (CACHE / "api-key-platform").read_text().strip()
PLATFORM_AUTH = {"Authorization": f"Bearer {PLATFORM_KEY}"}
MODEL = "qwen3-cs"
SOCKET = "/run/haproxy/admin.sock"


def node(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def sudo(name: str, command: str) -> str:
    return node(name).check_output("sudo -n sh -c %s", command)


def holder() -> str | None:
    """The load balancer that holds the virtual IP now."""
    for name in LBS:
        if node(name).run(f"ip -o -4 addr show | grep -qw '{VIP}/24'").rc == 0:
            return name
    return None


def runtime(lb: str, command: str) -> str:
    return sudo(lb, f"echo {shlex.quote(command)} | socat -t 5 stdio unix-connect:{SOCKET}")


def servers(lb: str) -> dict[str, dict[str, str]]:
    """`show stat` rows of the backend's servers: status (UP/DOWN/DRAIN/MAINT), stot, scur..."""
    text = runtime(lb, "show stat").lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {r["svname"]: r for r in rows if r["pxname"] == "ollama_nodes" and r["svname"] not in ("BACKEND", "FRONTEND")}


def wait_status(lb: str, server: str, prefix: str, timeout: float = 60) -> float:
    """Seconds until `server` shows a status starting with prefix on lb (fails after timeout)."""
    started = time.monotonic()
    status = "?"
    while time.monotonic() - started < timeout:
        try:
            status = servers(lb)[server]["status"]
        except AssertionError:  # the socket is briefly away while a reload replaces the workers
            status = "?"
        if status.startswith(prefix):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{server} not {prefix} on {lb} after {timeout}s: {status}")


def standin(name: str, **knobs) -> None:
    """Set (or with no knobs, clear) the stand-in's run-time knobs on a node."""
    if knobs:
        sudo(name, f"mkdir -p /etc/ollama-standin && printf %s {shlex.quote(json.dumps(knobs))} > /etc/ollama-standin/control.json")
    else:
        sudo(name, "rm -f /etc/ollama-standin/control.json")


@contextlib.contextmanager
def slowed(tokens_per_second: int):
    """Every node's stand-in streams at tokens_per_second (its knob) until the block ends."""
    for name in NODES:
        standin(name, tokens_per_second=tokens_per_second)
    try:
        yield
    finally:
        for name in NODES:
            standin(name)


def client(timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=URL, verify=CA, timeout=timeout)


def chat_once(http: httpx.Client, num_predict: int = 40) -> str:
    """One streamed chat through the front; its answer's text. Raises unless the stream ends with done."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Where is my parcel?"}], "stream": True,
            "options": {"num_predict": num_predict}}
    text = ""
    with http.stream("POST", "/api/chat", json=body, headers=AUTH) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.strip():
                chunk = json.loads(line)
                if chunk.get("error"):
                    raise RuntimeError(chunk["error"])
                text += chunk.get("message", {}).get("content", "")
                if chunk.get("done"):
                    return text
    raise RuntimeError("stream ended before done")


class Load:
    """`clients` threads streaming chats through the front until stopped (at most `limit_s`).
    Each request is recorded as (started, ended, error or None), times from time.monotonic()."""

    def __init__(self, clients: int = 4, limit_s: float = 60, request=chat_once):
        self.records: list[tuple[float, float, str | None]] = []
        self._stop = threading.Event()
        self._limit = limit_s
        self._request = request
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        self._lock = threading.Lock()

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit
        with client() as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                error = None
                try:
                    self._request(http)
                except Exception as exc:  # noqa: BLE001 - every failure is a data point
                    error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.records.append((started, time.monotonic(), error))

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._limit + 30)

    def failed(self) -> list[tuple[float, float, str | None]]:
        return [r for r in self.records if r[2] is not None]
