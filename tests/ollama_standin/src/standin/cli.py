"""The `ollama` command line of the stand-in; talks to the server through OLLAMA_HOST like the real CLI."""

import argparse
import hashlib
import json
import os
import sys
import time
import unicodedata
from typing import Any, Callable, Dict, Iterator, List, Optional

from . import build_info, envconfig, gofmt, modelfile, names
from .registry import PullError, open_request

Progress = Callable[[Dict[str, Any]], None]


class APIError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """api.ClientFromEnvironment: base URL from OLLAMA_HOST (0.0.0.0 is dialled as is)."""

    def __init__(self) -> None:
        host = envconfig.host()
        hostname = host.host or "127.0.0.1"
        self.base = "%s://%s" % (host.scheme, gofmt.join_host_port(hostname, host.port))
        if host.path:
            self.base += "/" + host.path

    def _headers(self, accept: str) -> Dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Accept": accept,
            "User-Agent": "ollama/%s (amd64 linux) Go/go1.24.0 [ollama stand-in]" % build_info.VERSION,
        }

    def _send(self, method: str, path: str, data: Any, accept: str):
        body = None if data is None else gofmt.go_json(data)
        try:
            return open_request(method, self.base + path, self._headers(accept), body)
        except PullError as exc:
            raise APIError(str(exc)) from None

    def do(self, method: str, path: str, data: Any = None) -> Any:
        resp = self._send(method, path, data, "application/json")
        raw = resp.read()
        if resp.status >= 400:
            try:
                message = json.loads(raw).get("error", "")
            except ValueError:
                message = raw.decode("utf-8", "replace")
            raise APIError(message, resp.status)
        return json.loads(raw) if raw else None

    def stream(self, path: str, data: Any) -> Iterator[Dict[str, Any]]:
        resp = self._send("POST", path, data, "application/x-ndjson")
        status_text = "%d %s" % (resp.status, resp.reason)
        for line in resp:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise APIError(("%s: %s" % (status_text, line.decode())) if resp.status >= 400 else line.decode(), resp.status) from None
            if resp.status >= 400:
                raise APIError("%s: %s" % (status_text, obj.get("error", "")), resp.status)
            if obj.get("error"):
                raise APIError(obj["error"])
            yield obj

    def heartbeat(self) -> None:
        resp = self._send("HEAD", "/", None, "application/json")
        resp.read()


# -- output helpers ----------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(rows: List[List[str]], header: Optional[List[str]] = None) -> str:
    """tablewriter with no borders, no header line and four-space padding, as Ollama configures it."""
    all_rows = ([header] if header else []) + rows
    if not all_rows:
        return ""
    widths = [max(_width(r[i]) for r in all_rows if i < len(r)) for i in range(max(len(r) for r in all_rows))]
    out = []
    for row in all_rows:
        cells = [cell + " " * (widths[i] - _width(cell)) + "    " for i, cell in enumerate(row)]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def print_progress(msg: Dict[str, Any]) -> None:
    status = msg.get("status", "")
    if msg.get("digest") and msg.get("total"):
        done = msg.get("completed", 0)
        pct = int(100 * done / msg["total"]) if msg["total"] else 0
        line = "%s: %3d%% %s/%s" % (status, pct, gofmt.human_bytes(done), gofmt.human_bytes(msg["total"]))
    else:
        line = status
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# -- commands -------------------------------------------------------------------------------------


def cmd_version(client: Client) -> int:
    server_version = ""
    try:
        server_version = (client.do("GET", "/api/version") or {}).get("version", "")
    except APIError:
        print("Warning: could not connect to a running Ollama instance")
    if server_version:
        print("ollama version is %s" % server_version)
    if server_version != build_info.VERSION:
        print("Warning: client version is %s" % build_info.VERSION)
    return 0


def cmd_list(client: Client, args: argparse.Namespace) -> int:
    rows = []
    for m in client.do("GET", "/api/tags")["models"]:
        if not args.prefix or m["name"].lower().startswith(args.prefix.lower()):
            modified = gofmt.human_time(gofmt.parse_rfc3339(m["modified_at"]), "Never")
            rows.append([m["name"], m["digest"][:12], gofmt.human_bytes(m["size"]), modified])
    sys.stdout.write(table(rows, ["NAME", "ID", "SIZE", "MODIFIED"]))
    return 0


def cmd_ps(client: Client, args: argparse.Namespace) -> int:
    rows = []
    for m in client.do("GET", "/api/ps")["models"]:
        if args.prefix and not m["name"].startswith(args.prefix):
            continue
        size, vram = m["size"], m["size_vram"]
        if vram == 0:
            proc = "100% CPU"
        elif vram == size:
            proc = "100% GPU"
        elif vram > size or size == 0:
            proc = "Unknown"
        else:
            cpu = round((size - vram) / size * 100)
            proc = "%d%%/%d%% CPU/GPU" % (cpu, 100 - cpu)
        expires = gofmt.parse_rfc3339(m["expires_at"])
        until = "Stopping..." if expires < time.time() else gofmt.human_time(expires, "Never")
        rows.append([m["name"], m["digest"][:12], gofmt.human_bytes(size), proc, str(m.get("context_length", 0)), until])
    sys.stdout.write(table(rows, ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]))
    return 0


def pull(client: Client, model: str, insecure: bool) -> None:
    req: Dict[str, Any] = {"name": model}
    if insecure:
        req["insecure"] = True
    for msg in client.stream("/api/pull", req):
        print_progress(msg)


def cmd_pull(client: Client, args: argparse.Namespace) -> int:
    pull(client, args.model, args.insecure)
    return 0


def _show_info(resp: Dict[str, Any]) -> str:
    info = resp.get("model_info") or {}
    details = resp.get("details") or {}
    arch = info.get("general.architecture", "")
    rows = []
    if arch:
        rows.append(["", "architecture", arch])
    if details.get("parameter_size"):
        rows.append(["", "parameters", details["parameter_size"]])
    for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
        value = info.get("%s.%s" % (arch, key))
        if isinstance(value, (int, float)):
            rows.append(["", label, gofmt.format_float(float(value)) if value != int(value) else str(int(value))])
    rows.append(["", "quantization", details.get("quantization_level", "")])
    sections = [("Model", rows)]
    if resp.get("capabilities"):
        sections.append(("Capabilities", [["", c] for c in resp["capabilities"]]))
    if resp.get("parameters"):
        sections.append(("Parameters", [[""] + line.split() for line in resp["parameters"].splitlines() if line]))
    for key, title in (("system", "System"), ("license", "License")):
        if resp.get(key):
            lines = [ln.strip() for ln in resp[key].splitlines() if ln.strip()]
            body = [["", ln] for ln in lines[:2]] + ([["", "..."]] if len(lines) > 2 else [])
            sections.append((title, body))
    return "".join("  %s\n%s\n" % (title, table(body)) for title, body in sections)


def cmd_show(client: Client, args: argparse.Namespace) -> int:
    flags = [f for f in ("license", "modelfile", "parameters", "system", "template") if getattr(args, f)]
    if len(flags) > 1:
        raise APIError("only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified")
    resp = client.do("POST", "/api/show", {"name": args.model, "verbose": args.verbose})
    if not flags:
        sys.stdout.write(_show_info(resp))
    elif flags[0] in ("system", "template"):
        sys.stdout.write(resp.get(flags[0], ""))
    else:
        print(resp.get(flags[0], ""))
    return 0


def _upload_blob(client: Client, path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    digest = "sha256:" + sha.hexdigest()
    try:
        client.do("HEAD", "/api/blobs/" + digest)
    except APIError as exc:
        if exc.status != 404:
            raise
        with open(path, "rb") as f:
            resp = open_request("POST", client.base + "/api/blobs/" + digest, {"Content-Type": "application/octet-stream"}, f.read())
        resp.read()
        if resp.status >= 400:
            raise APIError("upload of %s failed with status %d" % (path, resp.status), resp.status)
    return digest


def build_create_request(commands: List[modelfile.Command], relative_dir: str, client: Client) -> Dict[str, Any]:
    """Modelfile.CreateRequest, with local FROM files uploaded as blobs."""
    req: Dict[str, Any] = {}
    params: Dict[str, Any] = {}
    messages: List[Dict[str, str]] = []
    licenses: List[str] = []
    for name, value in commands:
        if name == "model":
            path = os.path.abspath(os.path.join(relative_dir, os.path.expanduser(value)))
            if os.path.isfile(path):
                req.setdefault("files", {})[os.path.basename(path)] = _upload_blob(client, path)
            else:
                req["from"] = value
        elif name in ("template", "system", "renderer", "parser"):
            req[name] = value
        elif name == "license":
            licenses.append(value)
        elif name == "message":
            role, _, content = value.partition(": ")
            messages.append({"role": role, "content": content})
        elif name in ("adapter", "draft", "requires"):
            raise APIError("%s is not supported by the ollama stand-in" % name.upper())
        elif name in modelfile.DEPRECATED:
            print("warning: parameter %s is deprecated" % name)
        else:
            value_typed = modelfile.format_param(name, value)
            if isinstance(value_typed, list) and isinstance(params.get(name), list):
                params[name] = params[name] + value_typed
            else:
                params[name] = value_typed
    if params:
        req["parameters"] = params
    if messages:
        req["messages"] = messages
    if licenses:
        req["license"] = licenses
    return req


def cmd_create(client: Client, args: argparse.Namespace) -> int:
    if not names.parse(args.model).is_valid():
        raise APIError("invalid model name: %s" % args.model)
    filename = args.file or "Modelfile"
    if not os.path.exists(filename):
        if args.file:
            raise APIError("specified Modelfile wasn't found")
        text, filename = "FROM .\n", os.path.join(os.getcwd(), "Modelfile")
    else:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    commands = modelfile.parse(text)
    print_progress({"status": "gathering model components"})
    req = build_create_request(commands, os.path.dirname(os.path.abspath(filename)), client)
    req["model"] = args.model
    if args.quantize:
        req["quantize"] = args.quantize
    for msg in client.stream("/api/create", req):
        print_progress(msg)
    return 0


def cmd_cp(client: Client, args: argparse.Namespace) -> int:
    client.do("POST", "/api/copy", {"source": args.source, "destination": args.destination})
    print("copied '%s' to '%s'" % (args.source, args.destination))
    return 0


def _unload(client: Client, model: str) -> None:
    client.do("POST", "/api/show", {"model": model})
    for _ in client.stream("/api/generate", {"model": model, "keep_alive": 0}):
        pass


def cmd_rm(client: Client, args: argparse.Namespace) -> int:
    for model in args.models:
        try:
            _unload(client, model)
        except APIError as exc:
            if "not found" not in str(exc).lower():
                sys.stderr.write("Warning: unable to stop model '%s'\n" % model)
        client.do("DELETE", "/api/delete", {"name": model})
        print("deleted '%s'" % model)
    return 0


def cmd_stop(client: Client, args: argparse.Namespace) -> int:
    try:
        _unload(client, args.model)
    except APIError as exc:
        if "not found" in str(exc):
            raise APIError('couldn\'t find model "%s" to stop' % args.model) from None
        raise
    return 0


def cmd_run(client: Client, args: argparse.Namespace) -> int:
    prompts = list(args.prompt)
    if not sys.stdin.isatty():
        data = sys.stdin.read()
        if data:
            prompts.insert(0, data)
    elif not prompts:
        raise APIError("[ollama stand-in] interactive 'ollama run' is not supported; pass a prompt")
    try:
        client.do("POST", "/api/show", {"model": args.model})
    except APIError as exc:
        if exc.status != 404:
            raise
        pull(client, args.model, args.insecure)
    req: Dict[str, Any] = {"model": args.model, "prompt": " ".join(prompts), "options": {}}
    if args.format:
        req["format"] = args.format
    if args.keepalive:
        req["keep_alive"] = gofmt.duration_string(gofmt.parse_duration(args.keepalive))
    last: Dict[str, Any] = {}
    for msg in client.stream("/api/generate", req):
        sys.stdout.write(msg.get("response", ""))
        sys.stdout.flush()
        last = msg
    if req["prompt"]:
        sys.stdout.write("\n\n")
    if args.verbose and last.get("done"):
        for key, label in (("total_duration", "total duration"), ("load_duration", "load duration"),
                           ("prompt_eval_duration", "prompt eval duration"), ("eval_duration", "eval duration")):
            sys.stderr.write("%-22s%s\n" % (label + ":", gofmt.duration_string(int(last.get(key, 0)))))
        sys.stderr.write("%-22s%d token(s)\n" % ("eval count:", last.get("eval_count", 0)))
    return 0


def cmd_push(client: Client, args: argparse.Namespace) -> int:
    raise APIError("[ollama stand-in] push is not supported")


HEARTBEAT = {"create", "show", "run", "stop", "pull", "push", "list", "ls", "ps", "cp", "rm"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ollama", description="Large language model runner ([ollama stand-in] test double)")
    p.add_argument("-v", "--version", action="store_true", help="Show version information")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", aliases=["start"], help="Start ollama")
    s = sub.add_parser("create", help="Create a model")
    s.add_argument("model")
    s.add_argument("-f", "--file", default="")
    s.add_argument("-q", "--quantize", default="")
    s = sub.add_parser("show", help="Show information for a model")
    s.add_argument("model")
    for flag in ("license", "modelfile", "parameters", "system", "template"):
        s.add_argument("--" + flag, action="store_true")
    s.add_argument("-v", "--verbose", action="store_true")
    s = sub.add_parser("run", help="Run a model")
    s.add_argument("model")
    s.add_argument("prompt", nargs="*")
    s.add_argument("--format", default="")
    s.add_argument("--keepalive", default="")
    s.add_argument("--verbose", action="store_true")
    s.add_argument("--insecure", action="store_true")
    s.add_argument("--nowordwrap", action="store_true")
    s = sub.add_parser("stop", help="Stop a running model")
    s.add_argument("model")
    s = sub.add_parser("pull", help="Pull a model from a registry")
    s.add_argument("model")
    s.add_argument("--insecure", action="store_true")
    s = sub.add_parser("push", help="Push a model to a registry")
    s.add_argument("model")
    s.add_argument("--insecure", action="store_true")
    s = sub.add_parser("list", aliases=["ls"], help="List models")
    s.add_argument("prefix", nargs="?", default="")
    s = sub.add_parser("ps", help="List running models")
    s.add_argument("prefix", nargs="?", default="")
    s = sub.add_parser("cp", help="Copy a model")
    s.add_argument("source")
    s.add_argument("destination")
    s = sub.add_parser("rm", help="Remove a model")
    s.add_argument("models", nargs="+")
    return p


COMMANDS = {
    "list": cmd_list, "ls": cmd_list, "ps": cmd_ps, "pull": cmd_pull, "show": cmd_show, "create": cmd_create,
    "cp": cmd_cp, "rm": cmd_rm, "stop": cmd_stop, "run": cmd_run, "push": cmd_push,
}


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    client = Client()
    if args.version:
        return cmd_version(client)
    if args.command in ("serve", "start"):
        from . import server

        return server.serve()
    if args.command is None:
        parser().print_help()
        return 0
    try:
        if args.command in HEARTBEAT:
            try:
                client.heartbeat()
            except APIError as exc:
                if " refused" in str(exc) or "could not connect" in str(exc):
                    raise APIError("could not connect to ollama server, run 'ollama serve' to start it") from None
                raise
        return COMMANDS[args.command](client, args)
    except (APIError, modelfile.ParseError, ValueError, OSError) as exc:
        sys.stderr.write("Error: %s\n" % exc)
        return 1
