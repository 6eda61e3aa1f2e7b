"""Shared by the testinfra suites: call the Ollama API on a test host from inside the host.

The API listens on whatever address the node's inventory binds (its own address in fleets,
127.0.0.1 on single hosts), so the helper asks `ss` on the host for the listening socket.
It answers whatever serves port 11434: in this project's scenarios, the ollama STAND-IN
(tests/ollama_standin, a test double of Ollama, not Ollama).
"""

import json

_REMOTE = r"""
import json, subprocess, sys, urllib.request, urllib.error
line = subprocess.run(["ss", "-Hltn", "sport = :11434"], capture_output=True, text=True).stdout.split()
addr = line[3] if len(line) > 3 else "127.0.0.1:11434"
method, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request("http://%s%s" % (addr, path), data=body.encode() if body else None, method=method)
try:
    resp = urllib.request.urlopen(req, timeout=30)
    print(json.dumps({"status": resp.status, "body": resp.read().decode()}))
except urllib.error.HTTPError as exc:
    print(json.dumps({"status": exc.code, "body": exc.read().decode()}))
"""


def api(host, method, path, body=None):
    """(status, decoded JSON body or None) of one request made on `host` itself."""
    out = host.check_output("python3 -c %s %s %s %s", _REMOTE, method, path, json.dumps(body) if body is not None else "")
    result = json.loads(out)
    return result["status"], (json.loads(result["body"]) if result["body"].strip() else None)
