"""`ollama serve` for the stand-in: Ollama's HTTP API on http.server."""

import io
import ipaddress
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import build_info, control, envconfig, generation, gguf, gofmt, modelfile, names, registry
from .httpbase import JSON_TYPE, BaseHandler, BindError, ChunkedStream, bind_json
from .scheduler import QueueFull, Scheduler
from .store import CONFIG_MEDIA_TYPE, MT_LICENSE, MT_MESSAGES, MT_MODEL, MT_PARAMS, MT_SYSTEM, MT_TEMPLATE, InvalidDigest, Store

DEFAULT_TEMPLATE = "{{ .Prompt }}"
PRUNE_GRACE_SECONDS = 3600
STANDIN_TAG = "[ollama stand-in]"


def log(level: str, msg: str, **attrs: Any) -> None:
    """slog text-handler style line on stderr."""
    parts = ["time=%s" % gofmt.rfc3339(time.time()), "level=" + level, "source=ollama-standin", "msg=" + json.dumps(msg, ensure_ascii=False)]
    for key, value in attrs.items():
        text = str(value)
        parts.append("%s=%s" % (key, json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text))
    sys.stderr.write(" ".join(parts) + "\n")
    sys.stderr.flush()


# -- host checks (allowedHostsMiddleware) ---------------------------------------------------


def _local_interface_ips() -> List[str]:
    found: List[str] = []
    try:
        with open("/proc/net/fib_trie") as f:
            lines = f.read().splitlines()
        for prev, cur in zip(lines, lines[1:]):
            if "/32 host LOCAL" in cur:
                found.append(prev.split()[-1])
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                raw = line.split()[0]
                found.append(str(ipaddress.ip_address(int(raw, 16))))
    except (OSError, ValueError):
        pass
    return found


def _go_is_private(ip: "ipaddress._BaseAddress") -> bool:
    if ip.version == 4:
        return any(ip in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    return ip in ipaddress.ip_network("fc00::/7")


def host_allowed(bound_loopback: bool, host_header: str) -> bool:
    if not bound_loopback:
        return True
    try:
        host, _port = gofmt.split_host_port(host_header)
    except ValueError:
        host = host_header
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback or _go_is_private(ip) or ip.is_unspecified or str(ip) in _local_interface_ips():
            return True
    host = host.lower()
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return any(host.endswith("." + tld) for tld in ("localhost", "local", "internal"))


# -- the server -------------------------------------------------------------------------


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: Tuple[str, int], family: int) -> None:
        self.address_family = family
        super().__init__(addr, Handler, bind_and_activate=False)
        if family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()
        self.store = Store(envconfig.models_dir())
        self.scheduler = Scheduler()
        self.closing = threading.Event()
        self.busy = 0
        self.busy_cond = threading.Condition()
        self.connections: Dict[int, Tuple[socket.socket, List[bool]]] = {}
        bound = ipaddress.ip_address(self.server_address[0].split("%")[0])
        self.bound_loopback = bound.is_loopback

    def listen_text(self) -> str:
        host, port = self.server_address[:2]
        return gofmt.join_host_port(host, str(port))


Route = Callable[["Handler"], None]


class Handler(BaseHandler):
    server: StandinServer

    # -- connection bookkeeping (for SIGTERM) ---------------------------------------
    def setup(self) -> None:
        super().setup()
        self.state = [False]  # [busy]
        self.server.connections[id(self)] = (self.connection, self.state)

    def finish(self) -> None:
        self.server.connections.pop(id(self), None)
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            self.state[0] = True
        return ok

    # -- dispatch ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.dispatch()

    do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_GET

    def dispatch(self) -> None:
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        with self.server.busy_cond:
            self.server.busy += 1
        try:
            if not host_allowed(self.server.bound_loopback, self.headers.get("Host", "")):
                self.send_empty(403)
                return
            self.route(path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.state[0] = False
            if self.server.closing.is_set():
                self.close_connection = True
            with self.server.busy_cond:
                self.server.busy -= 1
                self.server.busy_cond.notify_all()
            self.log_request_line(started)

    def route(self, path: str) -> None:
        routes = ROUTES.get(path)
        param = ""
        if routes is None:
            for prefix in ("/api/blobs/", "/v1/models/"):
                if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix) :]:
                    routes, param = ROUTES[prefix + ":param"], path[len(prefix) :]
        if routes is None:
            trimmed = path.rstrip("/")
            if path.endswith("/") and trimmed in ROUTES and self.command in ROUTES[trimmed]:
                self.send_bytes(301 if self.command == "GET" else 307, b"", "", {"Location": trimmed})
                return
            self.read_body()
            self.send_text(404, "404 page not found")
            return
        if self.command == "OPTIONS":
            self.send_empty(204)
            return
        handler = routes.get(self.command)
        if handler is None:
            self.read_body()
            self.send_bytes(405, b"405 method not allowed", "text/plain; charset=utf-8", {"Allow": ", ".join(sorted(routes))})
            return
        self.param = param
        handler(self)

    def bind(self, struct: str, fields: Dict[str, type]) -> Optional[Dict[str, Any]]:
        try:
            return bind_json(self.read_body(), struct, fields)
        except BindError as exc:
            self.send_error_json(400, str(exc))
            return None

    @property
    def store(self) -> Store:
        return self.server.store

    def resolve(self, text: str) -> names.Name:
        return self.store.existing_name(names.parse(text))

    # -- faults ----------------------------------------------------------------------------
    def apply_fault(self, knobs: Dict[str, Any], path: str) -> Optional[str]:
        """Handles hang/http500 (returns None when the request was consumed); 'crash' is returned for later."""
        fault = control.fault_for(path, knobs)
        if fault == "hang":
            self.server.closing.wait()
            self.close_connection = True
            return None
        if fault == "http500":
            self.send_error_json(500, "llama runner process has terminated: exit status 2 %s injected http500 fault" % STANDIN_TAG)
            return None
        return fault


def crash() -> None:
    sys.stderr.write("panic: %s injected crash fault\n\ngoroutine 1 [running]:\n" % STANDIN_TAG)
    sys.stderr.flush()
    os._exit(2)


# -- simple endpoints -----------------------------------------------------------------------


def h_root(h: Handler) -> None:
    h.send_text(200, "Ollama is running")


def h_version(h: Handler) -> None:
    h.send_json(200, {"version": build_info.VERSION})


def list_entry(model: Any) -> Dict[str, Any]:
    return {
        "name": model.short_name,
        "model": model.short_name,
        "modified_at": gofmt.rfc3339(model.mtime),
        "size": model.size(),
        "digest": model.digest,
        "details": model.details(),
        "capabilities": model.capabilities(),
    }


def list_models(store: Store) -> List[Any]:
    models = []
    for name in store.manifests():
        try:
            models.append(store.load_model(name))
        except (OSError, ValueError, InvalidDigest):
            continue
    models.sort(key=lambda m: -int(m.mtime))
    return models


def h_tags(h: Handler) -> None:
    h.send_json(200, {"models": [list_entry(m) for m in list_models(h.store)]})


def h_ps(h: Handler) -> None:
    # size_vram follows the vram_fraction knob (default 0: 100% CPU, as on the GPU-less test hosts).
    fraction = control.current()["vram_fraction"]
    models = h.server.scheduler.ps()
    for entry in models:
        entry["size_vram"] = int(round(entry["size"] * fraction))
    h.send_json(200, {"models": models})


def h_show(h: Handler) -> None:
    req = h.bind("ShowRequest", {"model": str, "name": str, "system": str, "verbose": bool, "options": dict})
    if req is None:
        return
    requested = req.get("model") or req.get("name") or ""
    if not requested:
        h.send_error_json(400, "model is required")
        return
    name = h.resolve(requested)
    if not name.is_valid():
        h.send_error_json(400, "invalid model name")
        return
    try:
        model = h.store.load_model(name)
    except FileNotFoundError:
        h.send_error_json(404, "model '%s' not found" % name.display_shortest())
        return
    h.send_json(200, show_response(model, req))


def show_response(model: Any, req: Dict[str, Any]) -> Dict[str, Any]:
    system = req.get("system") or model.system
    template = model.template if model.template is not None else DEFAULT_TEMPLATE
    params = []
    for key in sorted(model.options):
        value = model.options[key]
        for item in value if isinstance(value, list) else [value]:
            params.append("%-30s %s" % (key, gofmt.format_value_sharp(item)))
    commands = [("model", model.model_path), ("template", template)]
    if system:
        commands.append(("system", system))
    options = dict(model.options)
    options.update(req.get("options") or {})
    commands += modelfile.options_commands(options)
    commands += [("license", text) for text in model.license]
    commands += [("message", "%s: %s" % (m.get("role", ""), m.get("content", ""))) for m in model.messages]
    text = '# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM %s\n\n' % model.short_name
    kv = model.kv()
    kv.pop("general.name", None)
    kv.pop("tokenizer.chat_template", None)
    if not req.get("verbose"):
        kv = {k: ([] if isinstance(v, list) and len(v) > 5 else v) for k, v in kv.items()}
    resp: Dict[str, Any] = {}
    if model.license:
        resp["license"] = "\n".join(model.license)
    resp["modelfile"] = text + modelfile.render(commands)
    if params:
        resp["parameters"] = "\n".join(params)
    resp["template"] = template
    if system:
        resp["system"] = system
    resp["details"] = model.details()
    if model.messages:
        resp["messages"] = [{"role": m.get("role", ""), "content": m.get("content", "")} for m in model.messages]
    resp["model_info"] = kv
    caps = model.capabilities()
    if caps:
        resp["capabilities"] = caps
    resp["modified_at"] = gofmt.rfc3339(model.mtime)
    return resp


def h_copy(h: Handler) -> None:
    req = h.bind("CopyRequest", {"source": str, "destination": str})
    if req is None:
        return
    src, dst = names.parse(req.get("source", "")), names.parse(req.get("destination", ""))
    if not src.is_valid():
        h.send_error_json(400, "source %s is invalid" % gofmt.go_quote(req.get("source", "")))
        return
    if not dst.is_valid():
        h.send_error_json(400, "destination %s is invalid" % gofmt.go_quote(req.get("destination", "")))
        return
    try:
        h.store.copy(h.store.existing_name(src), h.store.existing_name(dst))
    except FileNotFoundError:
        h.send_error_json(404, "model %s not found" % gofmt.go_quote(req.get("source", "")))
        return
    h.send_empty(200)


def h_delete(h: Handler) -> None:
    req = h.bind("DeleteRequest", {"model": str, "name": str})
    if req is None:
        return
    given = req.get("model") or req.get("name") or ""
    name = names.parse(given)
    if not name.is_valid():
        h.send_error_json(400, "name %s is invalid" % gofmt.go_quote(given))
        return
    name = h.store.existing_name(name)
    try:
        model = h.store.load_model(name)
        h.server.scheduler.unload(model)
        h.store.delete(name)
    except FileNotFoundError:
        h.send_error_json(404, "model '%s' not found" % given)
        return
    h.send_empty(200)


def _requested_blob_path(h: Handler, drain_body: bool) -> Optional[str]:
    """The store path of the digest in the URL, or None after answering 400 for an invalid one."""
    try:
        return h.store.blob_path(h.param)
    except InvalidDigest as exc:
        if drain_body:
            h.read_body()
        h.send_error_json(400, str(exc))
        return None


def h_head_blob(h: Handler) -> None:
    path = _requested_blob_path(h, drain_body=False)
    if path is None:
        return
    if not os.path.exists(path):
        h.send_error_json(404, "blob %s not found" % gofmt.go_quote(h.param))
        return
    h.send_empty(200)


def h_post_blob(h: Handler) -> None:
    path = _requested_blob_path(h, drain_body=True)
    if path is None:
        return
    if os.path.exists(path):
        h.read_body()
        h.send_empty(200)
        return
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        digest, tmp = h.store.write_blob_stream(io.BytesIO(h.read_body()), None)
    else:
        digest, tmp = h.store.write_blob_stream(h.rfile, int(h.headers.get("Content-Length") or 0))
    final = h.store.blob_path(digest)
    if os.path.exists(final):
        os.remove(tmp)
    else:
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    if digest != h.param:
        h.send_error_json(400, "digest mismatch, expected %s, got %s" % (gofmt.go_quote(h.param), gofmt.go_quote(digest)))
        return
    h.send_empty(201)


# -- streaming helpers ----------------------------------------------------------------------


def run_streamed(h: Handler, stream_flag: Optional[bool], work: Callable[[Callable[[Dict[str, Any]], None]], None]) -> None:
    """Run a progress-producing job; stream NDJSON, or return only the last status (stream:false)."""
    if stream_flag is False:
        latest: Dict[str, Any] = {}

        def keep(msg: Dict[str, Any]) -> None:
            latest.clear()
            latest.update(msg)

        try:
            work(keep)
        except StatusFailure as exc:
            h.send_error_json(exc.status, str(exc))
            return
        except (registry.PullError, OSError, ValueError) as exc:
            h.send_error_json(500, str(exc))
            return
        h.send_bytes(200, gofmt.go_json(latest), JSON_TYPE)
        return
    stream = ChunkedStream(h, "application/x-ndjson")
    try:
        work(stream.write_json)
    except StatusFailure as exc:
        stream.error(str(exc), exc.status)
    except (registry.PullError, OSError, ValueError) as exc:
        stream.error(str(exc))
    stream.end()


class StatusFailure(Exception):
    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


# -- pull / create ----------------------------------------------------------------------------


def _target_name(h: Handler, req: Dict[str, Any]) -> Optional[names.Name]:
    """The model a pull or create writes (`model`, or the older `name`), matched case-insensitively
    to one already stored; None after answering 400 for an invalid name."""
    name = names.parse(req.get("model") or req.get("name") or "")
    if not name.is_valid():
        h.send_error_json(400, "invalid model name")
        return None
    return h.store.existing_name(name)


def h_pull(h: Handler) -> None:
    req = h.bind("PullRequest", {"model": str, "name": str, "insecure": bool, "stream": bool})
    if req is None:
        return
    name = _target_name(h, req)
    if name is None:
        return
    insecure = bool(req.get("insecure"))

    def work(progress: Callable[[Dict[str, Any]], None]) -> None:
        registry.pull(h.store, name, insecure, progress)

    run_streamed(h, req.get("stream"), work)


def _template_ok(text: str) -> bool:
    return text.count("{{") == text.count("}}")


def h_create(h: Handler) -> None:
    req = h.bind(
        "CreateRequest",
        {"model": str, "name": str, "from": str, "files": dict, "adapters": dict, "template": str, "system": str,
         "parameters": dict, "messages": list, "stream": bool, "quantize": str},
    )
    if req is None:
        return
    for fname, digest in (req.get("files") or {}).items():
        if fname.startswith("/") or ".." in fname.split("/"):
            h.send_error_json(400, "file path must be relative")
            return
        if not digest:
            h.send_error_json(400, "invalid digest format")
            return
    name = _target_name(h, req)
    if name is None:
        return

    def work(progress: Callable[[Dict[str, Any]], None]) -> None:
        create_model(h.store, name, req, progress)

    run_streamed(h, req.get("stream"), work)


def _config_from_kv(kv: Dict[str, Any], base: Dict[str, Any]) -> Dict[str, Any]:
    arch = kv.get("general.architecture", "unknown")
    cfg: Dict[str, Any] = {
        "model_format": base.get("model_format") or "gguf",
        "model_family": arch,
        "model_families": [arch],
        "model_type": gofmt.human_number(int(kv.get("general.parameter_count", 0) or 0)),
        "file_type": gguf.file_type_name(kv),
    }
    for key in ("renderer", "parser", "requires", "capabilities"):
        if base.get(key):
            cfg[key] = base[key]
    cfg["architecture"] = "amd64"
    cfg["os"] = "linux"
    return cfg


def create_model(store: Store, name: names.Name, req: Dict[str, Any], progress: Callable[[Dict[str, Any]], None]) -> None:
    try:
        old_manifest: Optional[Dict[str, Any]] = store.read_manifest(name)[0]
    except (OSError, ValueError):
        old_manifest = None
    layers: List[Dict[str, Any]] = []
    base_config: Dict[str, Any] = {}
    kv: Dict[str, Any] = {}
    if req.get("from"):
        src = names.parse(req["from"])
        if not src.is_valid():
            raise StatusFailure("invalid model name", 400)
        src = store.existing_name(src)
        try:
            manifest = store.read_manifest(src)[0]
        except FileNotFoundError:
            registry.pull(store, src, False, progress)
            manifest = store.read_manifest(src)[0]
        base = store.load_model(src)
        base_config = base.config
        for layer in manifest.get("layers") or []:
            copied = store.layer_from_blob(layer["digest"], layer["mediaType"], src.display_shortest())
            if layer["mediaType"] == MT_MODEL:
                kv = gguf.read_metadata(store.blob_path(layer["digest"]))
            layers.append(copied)
    elif req.get("files"):
        progress({"status": "parsing GGUF"})
        for _fname, digest in sorted(req["files"].items()):
            path = store.blob_path(digest)
            if not os.path.exists(path):
                raise StatusFailure("open %s: no such file or directory" % path)
            if not gguf.is_gguf(path):
                raise StatusFailure("supplied file was not in GGUF format", 400)
            kv = gguf.read_metadata(path)
            layers.append(store.layer_from_blob(digest, MT_MODEL, ""))
    else:
        raise StatusFailure("neither 'from' or 'files' was specified", 400)

    def replace(media: str, data: Optional[bytes]) -> None:
        layers[:] = [layer for layer in layers if layer["mediaType"] != media]
        if data is not None:
            layers.append(store.new_layer(data, media))

    if req.get("template"):
        if not _template_ok(req["template"]):
            raise StatusFailure("template error: template: :1: unclosed action", 400)
        replace(MT_TEMPLATE, req["template"].encode("utf-8"))
    if req.get("system"):
        replace(MT_SYSTEM, req["system"].encode("utf-8"))
    license_value = req.get("license")
    for text in [license_value] if isinstance(license_value, str) else (license_value or []):
        if text:
            layers.append(store.new_layer(str(text).encode("utf-8"), MT_LICENSE))
    params = dict(req.get("parameters") or {})
    for layer in [la for la in layers if la["mediaType"] == MT_PARAMS]:
        with open(store.blob_path(layer["digest"]), "rb") as f:
            for key, value in json.load(f).items():
                params.setdefault(key, value)
    if params:
        replace(MT_PARAMS, json.dumps(params, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    if req.get("messages"):
        msgs = [{"role": m.get("role", ""), "content": m.get("content", "")} for m in req["messages"]]
        replace(MT_MESSAGES, json.dumps(msgs, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    config = _config_from_kv(kv, base_config)
    config_layer = store.new_layer(json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n", CONFIG_MEDIA_TYPE)
    for layer in layers:
        progress({"status": layer["_status"]})
    progress({"status": "writing manifest"})
    store.write_manifest(name, config_layer, layers)
    if old_manifest is not None and not envconfig.boolean("OLLAMA_NOPRUNE"):
        old_layers = list(old_manifest.get("layers") or []) + [old_manifest.get("config") or {}]
        store.remove_unused(la["digest"] for la in old_layers if la.get("digest"))
    progress({"status": "success"})


# -- inference ----------------------------------------------------------------------------------


def keep_alive_from(value: Any) -> Optional[int]:
    """api.Duration.UnmarshalJSON; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BindError("Unsupported type: '%s'" % type(value).__name__)
    if isinstance(value, str):
        ns = gofmt.parse_duration(value)
    else:
        ns = gofmt.MAX_DURATION if value < 0 else int(value * 1e9)
    return gofmt.MAX_DURATION if ns < 0 else ns


class Inference:
    """One generate/chat request: resolve, schedule, produce tokens with the knob timings."""

    def __init__(self, h: Handler, req: Dict[str, Any], kind: str) -> None:
        self.h = h
        self.req = req
        self.kind = kind
        self.started = time.monotonic()
        self.created = time.time()

    def resolve(self) -> Optional[Any]:
        model_text = self.req.get("model", "")
        if not model_text.strip():
            if self.kind == "generate":
                self.h.send_error_json(404, "model '%s' not found" % model_text)
            else:
                self.h.send_error_json(400, "model is required")
            return None
        name = self.h.resolve(model_text.strip())
        if not name.is_valid():
            self.h.send_error_json(400, "invalid model name")
            return None
        try:
            return self.h.store.load_model(name)
        except FileNotFoundError:
            self.h.send_error_json(404, "model '%s' not found" % model_text)
            return None

    def prompt_parts(self, model: Any) -> Tuple[str, str]:
        if self.kind == "generate":
            return self.req.get("prompt", ""), self.req.get("system") or model.system
        msgs = list(model.messages) + list(self.req.get("messages") or [])
        system = model.system
        if msgs and msgs[0].get("role") == "system":
            system = msgs[0].get("content", "")
        text = "\n".join("%s: %s" % (m.get("role", ""), m.get("content", "")) for m in msgs if m.get("role") != "system")
        return text, system


def _base(model_name: str, created: float) -> Dict[str, Any]:
    return {"model": model_name, "created_at": gofmt.rfc3339(created, utc=True)}


def h_generate(h: Handler) -> None:
    req = h.bind("GenerateRequest", {"model": str, "prompt": str, "suffix": str, "system": str, "template": str,
                                     "stream": bool, "raw": bool, "options": dict, "images": list, "context": list})
    if req is not None:
        run_inference(h, req, "generate", "/api/generate")


def h_chat(h: Handler) -> None:
    req = h.bind("ChatRequest", {"model": str, "messages": list, "stream": bool, "options": dict, "tools": list})
    if req is not None:
        run_inference(h, req, "chat", "/api/chat")


def run_inference(h: Handler, req: Dict[str, Any], kind: str, path: str, emit: Optional["Emitter"] = None) -> None:
    inf = Inference(h, req, kind)
    model = inf.resolve()
    if model is None:
        return
    try:
        keep_alive = keep_alive_from(req.get("keep_alive"))
    except (BindError, ValueError) as exc:
        h.send_error_json(400, str(exc))
        return
    model_name = req.get("model", "")
    empty = not req.get("prompt") if kind == "generate" else not req.get("messages")
    if empty and keep_alive == 0:
        h.server.scheduler.unload(model)
        h.send_json(200, done_message(kind, model_name, time.time(), "unload"))
        return
    think = req.get("think")
    thinks = "thinking" in model.capabilities()
    if think not in (None, False) and not thinks:
        h.send_error_json(400, "%s does not support thinking" % json.dumps(model_name))
        return
    knobs = control.current()
    fault = h.apply_fault(knobs, path)
    if fault is None:
        return
    # Like real Ollama: a malformed model is listed, and fails only when it is loaded.
    load_error = model.load_error()
    if load_error:
        h.send_error_json(500, load_error)
        return
    options = dict(model.options)
    options.update(req.get("options") or {})
    try:
        runner = h.server.scheduler.acquire(model, options, keep_alive, knobs["load_ms"] / 1000.0)
    except QueueFull as exc:
        h.send_error_json(503, str(exc))
        return
    try:
        loaded_at = time.monotonic()
        if empty:
            h.send_json(200, done_message(kind, model_name, time.time(), "load"))
            return
        prompt, system = inf.prompt_parts(model)
        # A thinking model (its template has <think>) reasons before every answer, like the
        # thinking Qwen3 2507 build. Without `think` Ollama enables thinking for such a model and
        # its parser moves the reasoning to message.thinking / thinking. With think=false that
        # model reasons anyway (ollama/ollama#12438, #12917) but no thinking parser runs, so the
        # reasoning arrives as content, ended by </think> (server/routes.go, model/parsers/qwen3.go).
        # Thinking tokens count against num_predict, as in real Ollama.
        thoughts = generation.thinking_tokens(model.short_name, prompt, knobs["thinking_tokens"]) if thinks else []
        leaked = thinks and think is False
        budget = dict(options)
        if isinstance(options.get("num_predict"), (int, float)) and options["num_predict"] >= 0:
            thoughts = thoughts[: int(options["num_predict"])]
            budget["num_predict"] = int(options["num_predict"]) - len(thoughts)
        seq = generation.tokens(model.short_name, prompt, system, options, os.path.basename(model.model_path),
                                generation.answer_table(model.kv()))
        toks, done_reason = generation.limit(seq, budget)
        if req.get("format"):
            toks = [json.dumps({"ollama_standin": "".join(toks)}, ensure_ascii=False)]
        emitter = emit or Emitter(h, kind, model_name, req.get("stream") is not False)
        first_token_at = loaded_at
        if leaked and thoughts:
            thoughts[-1] += "\n</think>\n\n"
        stream = [(not leaked, t) for t in thoughts] + [(False, t) for t in toks]
        for i, (thinking, tok) in enumerate(stream):
            if i == 0:
                _sleep(knobs["first_token_ms"] / 1000.0)
                first_token_at = time.monotonic()
            elif knobs["tokens_per_second"] > 0:
                _sleep(1.0 / knobs["tokens_per_second"])
            if thinking:
                emitter.thinking(tok)
            else:
                emitter.token(tok)
            if i == 0 and fault == "crash":
                crash()
        if fault == "crash":
            crash()
        end = time.monotonic()
        metrics = {
            "total_duration": max(int((end - inf.started) * 1e9), 1),
            "load_duration": max(int((loaded_at - inf.started) * 1e9), 1),
            "prompt_eval_count": max(generation.count_tokens(system + " " + prompt), 1),
            "prompt_eval_duration": max(int((first_token_at - loaded_at) * 1e9), 1),
            "eval_count": len(toks) + len(thoughts),
            "eval_duration": max(int((end - first_token_at) * 1e9), 1),
        }
        if not metrics["eval_count"]:
            del metrics["eval_count"]
        context = None
        if kind == "generate" and not req.get("raw"):
            context = generation.context_ids(prompt + "".join(toks), metrics["prompt_eval_count"] + len(toks))
        emitter.done(done_reason, metrics, context)
    finally:
        h.server.scheduler.release(runner)


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def done_message(kind: str, model_name: str, created: float, reason: str) -> Dict[str, Any]:
    msg = _base(model_name, created)
    if kind == "chat":
        msg["message"] = {"role": "assistant", "content": ""}
    else:
        msg["response"] = ""
    msg["done"] = True
    msg["done_reason"] = reason
    return msg


class Emitter:
    """Writes /api/generate and /api/chat responses, streamed or as one object."""

    def __init__(self, h: Handler, kind: str, model_name: str, streaming: bool) -> None:
        self.h = h
        self.kind = kind
        self.model_name = model_name
        self.streaming = streaming
        self.stream = ChunkedStream(h, "application/x-ndjson") if streaming else None
        self.text: List[str] = []
        self.thought = ""

    def _msg(self, content: str, thinking: str = "") -> Dict[str, Any]:
        msg = _base(self.model_name, time.time())
        if self.kind == "chat":
            message = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            msg["message"] = message
        else:
            msg["response"] = content
            if thinking:
                msg["thinking"] = thinking
        return msg

    def thinking(self, text: str) -> None:
        self.thought += text
        if self.stream is not None:
            self.stream.write_json(dict(self._msg("", text), done=False))

    def token(self, tok: str) -> None:
        self.text.append(tok)
        if self.stream is not None:
            self.stream.write_json(dict(self._msg(tok), done=False))

    def done(self, reason: str, metrics: Dict[str, Any], context: Optional[List[int]]) -> None:
        if self.stream is not None:
            msg = self._msg("")
        else:
            msg = self._msg("".join(self.text), self.thought)
        msg["done"] = True
        msg["done_reason"] = reason
        if context is not None:
            msg["context"] = context
        msg.update(metrics)
        if self.stream is not None:
            self.stream.write_json(msg)
            self.stream.end()
        else:
            self.h.send_json(200, msg)


# -- OpenAI compatibility --------------------------------------------------------------------------


def openai_error(h: Handler, status: int, message: str) -> None:
    etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    h.send_json(status, {"error": {"message": message, "type": etype, "param": None, "code": None}})


class _ErrorCapture:
    """Converts the native error responses of run_inference into OpenAI-shaped errors."""

    def __init__(self, h: Handler) -> None:
        self.h = h
        self.original = h.send_error_json

    def __enter__(self) -> None:
        self.h.send_error_json = lambda status, message: openai_error(self.h, status, message)  # type: ignore[method-assign]

    def __exit__(self, *exc: Any) -> None:
        self.h.send_error_json = self.original  # type: ignore[method-assign]


class OpenAIEmitter(Emitter):
    def __init__(self, h: Handler, model_name: str, streaming: bool, include_usage: bool) -> None:
        super().__init__(h, "chat", model_name, False)
        self.sse = ChunkedStream(h, "text/event-stream") if streaming else None
        self.id = "chatcmpl-%d" % random.randrange(999)
        self.created = int(time.time())
        self.include_usage = include_usage
        self.first = True

    def _chunk(self, delta: Dict[str, Any], finish: Optional[str]) -> Dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model_name,
                "system_fingerprint": "fp_ollama", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _send(self, obj: Any) -> None:
        assert self.sse is not None
        self.sse.write_raw(b"data: " + gofmt.go_json(obj) + b"\n\n")

    def thinking(self, text: str) -> None:
        # openai/openai.go streams thinking as the delta's "reasoning", content empty.
        self.thought += text
        if self.sse is not None:
            delta = {"role": "assistant", "content": "", "reasoning": text} if self.first else {"content": "", "reasoning": text}
            self.first = False
            self._send(self._chunk(delta, None))

    def token(self, tok: str) -> None:
        self.text.append(tok)
        if self.sse is not None:
            delta = {"role": "assistant", "content": tok} if self.first else {"content": tok}
            self.first = False
            self._send(self._chunk(delta, None))

    def done(self, reason: str, metrics: Dict[str, Any], context: Optional[List[int]]) -> None:
        usage = {"prompt_tokens": metrics.get("prompt_eval_count", 0), "completion_tokens": metrics.get("eval_count", 0)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if self.sse is not None:
            if self.first:
                self._send(self._chunk({"role": "assistant", "content": ""}, None))
            final = self._chunk({}, reason or "stop")
            self._send(final)
            if self.include_usage:
                self._send(dict(final, choices=[], usage=usage))
            self.sse.write_raw(b"data: [DONE]\n\n")
            self.sse.end()
            return
        message: Dict[str, Any] = {"role": "assistant", "content": "".join(self.text)}
        if self.thought:
            message["reasoning"] = self.thought
        self.h.send_json(200, {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model_name,
                               "system_fingerprint": "fp_ollama",
                               "choices": [{"index": 0, "message": message, "finish_reason": reason or None}], "usage": usage})


def h_openai_chat(h: Handler) -> None:
    try:
        req = bind_json(h.read_body(), "ChatCompletionRequest", {"model": str, "messages": list, "stream": bool})
    except BindError as exc:
        openai_error(h, 400, str(exc))
        return
    if not req.get("messages"):
        openai_error(h, 400, "[] is too short - 'messages'")
        return
    messages = []
    for msg in req["messages"]:
        content = msg.get("content", "")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
        messages.append({"role": msg.get("role", ""), "content": content or ""})
    options: Dict[str, Any] = {}
    for src, dst in (("max_tokens", "num_predict"), ("seed", "seed"), ("temperature", "temperature"), ("top_p", "top_p"),
                     ("frequency_penalty", "frequency_penalty"), ("presence_penalty", "presence_penalty")):
        if req.get(src) is not None:
            options[dst] = req[src]
    if req.get("stop") is not None:
        options["stop"] = req["stop"] if isinstance(req["stop"], list) else [req["stop"]]
    chat_req = {"model": req.get("model", ""), "messages": messages, "options": options, "stream": bool(req.get("stream"))}
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    emitter = OpenAIEmitter(h, chat_req["model"], bool(req.get("stream")), include_usage)
    with _ErrorCapture(h):
        run_inference(h, chat_req, "chat", "/v1/chat/completions", emitter)


def _openai_model(model: Any) -> Dict[str, Any]:
    return {"id": model.short_name, "object": "model", "created": int(model.mtime), "owned_by": model.name.namespace}


def h_openai_models(h: Handler) -> None:
    data = [_openai_model(m) for m in list_models(h.store)] or None
    h.send_json(200, {"object": "list", "data": data})


def h_openai_model(h: Handler) -> None:
    name = h.resolve(h.param)
    try:
        model = h.store.load_model(name)
    except (FileNotFoundError, InvalidDigest):
        openai_error(h, 404, "model '%s' not found" % h.param)
        return
    h.send_json(200, _openai_model(model))


ROUTES: Dict[str, Dict[str, Route]] = {
    "/": {"GET": h_root, "HEAD": h_root},
    "/api/version": {"GET": h_version, "HEAD": h_version},
    "/api/tags": {"GET": h_tags, "HEAD": h_tags},
    "/api/ps": {"GET": h_ps},
    "/api/show": {"POST": h_show},
    "/api/pull": {"POST": h_pull},
    "/api/create": {"POST": h_create},
    "/api/copy": {"POST": h_copy},
    "/api/delete": {"DELETE": h_delete},
    "/api/generate": {"POST": h_generate},
    "/api/chat": {"POST": h_chat},
    "/api/blobs/:param": {"HEAD": h_head_blob, "POST": h_post_blob},
    "/v1/chat/completions": {"POST": h_openai_chat},
    "/v1/models": {"GET": h_openai_models},
    "/v1/models/:param": {"GET": h_openai_model},
}


# -- startup / shutdown ---------------------------------------------------------------------------


def prune_blobs(store: Store) -> None:
    """Startup clean-up like real Ollama: fix 'sha256:' names, drop unreferenced old blobs."""
    blobs = store.blobs_dir()
    for fname in os.listdir(blobs):
        if fname.startswith("sha256:"):
            os.replace(os.path.join(blobs, fname), os.path.join(blobs, fname.replace(":", "-")))
    if envconfig.boolean("OLLAMA_NOPRUNE"):
        return
    in_use = set()
    for manifest, _raw, _mtime in store.manifests().values():
        for layer in list(manifest.get("layers") or []) + [manifest.get("config") or {}]:
            if layer.get("digest"):
                in_use.add(layer["digest"].replace(":", "-"))
    removed = total = 0
    cutoff = time.time() - PRUNE_GRACE_SECONDS
    for fname in os.listdir(blobs):
        path = os.path.join(blobs, fname)
        if not os.path.isfile(path) or os.path.getmtime(path) > cutoff:
            continue
        valid = fname.startswith("sha256-") and len(fname) == 71
        total += valid
        if not valid or fname not in in_use:
            os.remove(path)
            removed += valid
    log("INFO", "total blobs: %d" % total)
    log("INFO", "total unused blobs removed: %d" % removed)


def _bind_address(host: str, port: int) -> Tuple[Tuple[str, int], int]:
    if host == "":
        return ("::", port), socket.AF_INET6
    try:
        ip = ipaddress.ip_address(host)
        return (str(ip), port), (socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
    except ValueError:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        infos.sort(key=lambda i: i[0] != socket.AF_INET)
        return (infos[0][4][0], port), infos[0][0]


def serve() -> int:
    if build_info.FAIL_START:
        sys.stderr.write("Error: %s this build refuses to start (built with --fail-start)\n" % STANDIN_TAG)
        return 1
    hostinfo = envconfig.host()
    log("INFO", "server config", env="map[%s]" % " ".join("%s:%s" % kv for kv in sorted(envconfig.values().items())))
    log("INFO", "%s this is the ollama stand-in test double, not Ollama; no inference is performed" % STANDIN_TAG)
    store = Store(envconfig.models_dir())
    try:
        store.manifests_dir()
        prune_blobs(store)
    except OSError as exc:
        sys.stderr.write("Error: mkdir %s: %s\n" % (store.root, (exc.strerror or str(exc)).lower()))
        return 1
    try:
        addr, family = _bind_address(hostinfo.host, int(hostinfo.port))
        httpd = StandinServer(addr, family)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        sys.stderr.write("Error: listen tcp %s: bind: %s\n" % (hostinfo.hostport, reason))
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log("INFO", "Listening on %s (version %s)" % (httpd.listen_text(), build_info.VERSION))
    log("INFO", "inference compute", id="cpu", library="cpu", name="cpu", description="ollama stand-in (no GPU)")
    worker = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    worker.start()
    while not stop.wait(0.2):
        pass
    shutdown(httpd, control.current()["sigterm"])
    return 0


def shutdown(httpd: StandinServer, mode: str) -> None:
    httpd.shutdown()
    httpd.socket.close()
    if mode == "drain":
        log("INFO", "%s draining in-flight requests before exit" % STANDIN_TAG)
        for sock, state in list(httpd.connections.values()):
            if not state[0]:
                _hard_close(sock)
        with httpd.busy_cond:
            while httpd.busy > 0:
                httpd.busy_cond.wait(0.1)
    httpd.closing.set()
    for sock, _state in list(httpd.connections.values()):
        _hard_close(sock)
    httpd.scheduler.unload_all()


def _hard_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
