"""The registry exchange of a pull, request by request, against a scripted in-process registry.

Each rule here is real Ollama's (server/download.go blobDownload.run and Prepare,
server/images.go pullModelManifest, makeRequestWithRetry and makeRequest, with Go's
net/http client and transport underneath), so a site mirror that the stand-in can pull
from is one real Ollama can pull from:

- the manifest GET carries the Accept header and, like every Go request without Range,
  Accept-Encoding: gzip (Go undoes the gzip); its bytes are stored unchanged;
- HEAD of the blob URL gives the size (redirects followed, HEAD stays HEAD);
- one GET of the blob URL gives the "direct URL": redirects are followed while the host
  name stays the same (the port may change), a 200 or 307 must carry Location, an HTTP
  error is retried with back-off until 30 s have passed ("context deadline exceeded");
- the parts are read from the direct URL with Range requests.
"""

import gzip
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from standin import names, registry
from standin.store import Store

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


class ScriptedRegistry:
    """A registry on 127.0.0.1 serving `files` (path -> bytes); `script(handler)` may answer first.

    Static answers support HEAD and single Range requests; blob answers carry
    `Location: <own path>` when `blob_location` is set. Every request is recorded.
    """

    def __init__(self, files: Dict[str, bytes], script: Optional[Callable] = None, blob_location: bool = True) -> None:
        self.files = files
        self.script = script
        self.blob_location = blob_location
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_HEAD(self) -> None:
                outer.answer(self, body=False)

            def do_GET(self) -> None:
                outer.answer(self, body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append((h.command, h.path, {k.lower(): v for k, v in h.headers.items()}))
        if self.script and self.script(h):
            return
        data = self.files.get(h.path)
        if data is None:
            send(h, 404, b'{"errors":[{"code":"NOT_FOUND"}]}', {"Content-Type": "application/json"}, body)
            return
        headers = {"Content-Type": MANIFEST_TYPE if "/manifests/" in h.path else "application/octet-stream"}
        if "/blobs/" in h.path and self.blob_location:
            headers["Location"] = h.path
        status, start, end = 200, 0, len(data) - 1
        rng = h.headers.get("Range", "")
        if rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            start, end, status = int(first), min(int(last or end), end), 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, len(data))
        send(h, status, data[start:end + 1], headers, body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def seen(self, method: str, path_part: str) -> List[Dict[str, str]]:
        return [hdrs for m, p, hdrs in self.requests if m == method and path_part in p]


def send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: Dict[str, str], body: bool = True) -> None:
    h.send_response(status)
    for key, value in headers.items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if body and h.command != "HEAD":
        h.wfile.write(data)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def model() -> Dict:
    """A tiny model: one layer, one config, the manifest bytes and the registry paths."""
    layer = b"GGUF" + bytes(range(256)) * 40
    config = b'{"model_format":"gguf","model_family":"qwen3"}'
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": sha(layer), "size": len(layer)}],
    }, indent=3).encode()
    base = "/v2/library/qwen3"
    files = {base + "/manifests/4b": manifest, base + "/blobs/" + sha(layer): layer, base + "/blobs/" + sha(config): config}
    return {"layer": layer, "config": config, "manifest": manifest, "files": files, "base": base}


@pytest.fixture
def servers():
    started: List[ScriptedRegistry] = []

    def start(*args, **kwargs) -> ScriptedRegistry:
        server = ScriptedRegistry(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def pull(tmp_path, host: str) -> Store:
    store = Store(str(tmp_path / "models"))
    registry.pull(store, names.parse("%s/library/qwen3:4b" % host), True, lambda _p: None)
    return store


def test_plain_pull_request_sequence(tmp_path, servers, model):
    """Manifest with Accept (+ gzip), HEAD for the size, one GET for the direct URL, Range GETs for the parts."""
    reg = servers(model["files"])
    store = pull(tmp_path, "127.0.0.1:%d" % reg.port)
    stored = open(store.manifest_path(names.parse("127.0.0.1:%d/library/qwen3:4b" % reg.port)), "rb").read()
    assert stored == model["manifest"]
    [manifest_get] = reg.seen("GET", "/manifests/")
    assert manifest_get["accept"] == MANIFEST_TYPE
    assert manifest_get["accept-encoding"] == "gzip"
    layer = sha(model["layer"])
    assert len(reg.seen("HEAD", layer)) == 1 and "accept-encoding" not in reg.seen("HEAD", layer)[0]
    gets = reg.seen("GET", layer)
    assert [g.get("range") for g in gets] == [None, "bytes=0-%d" % (len(model["layer"]) - 1)]
    assert gets[0]["accept-encoding"] == "gzip" and "accept-encoding" not in gets[1]


def test_gzipped_manifest_is_stored_unzipped(tmp_path, servers, model):
    """A server that gzips what Go asked gzip for: the stored manifest (and so its digest) is the plain bytes."""
    def gzip_manifests(h) -> bool:
        if "/manifests/" in h.path and "gzip" in h.headers.get("Accept-Encoding", ""):
            send(h, 200, gzip.compress(model["manifest"]), {"Content-Type": MANIFEST_TYPE, "Content-Encoding": "gzip"})
            return True
        return False

    reg = servers(model["files"], gzip_manifests)
    store = pull(tmp_path, "127.0.0.1:%d" % reg.port)
    stored = open(store.manifest_path(names.parse("127.0.0.1:%d/library/qwen3:4b" % reg.port)), "rb").read()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(model["manifest"]).hexdigest()


def test_manifest_that_is_not_json_fails_with_go_text(tmp_path, servers, model):
    """E.g. a web server answering an index page: Go's json error, not Python's."""
    def html(h) -> bool:
        if "/manifests/" in h.path:
            send(h, 200, b"<html>index</html>", {"Content-Type": "text/html"})
            return True
        return False

    reg = servers(model["files"], html)
    with pytest.raises(registry.PullError) as info:
        pull(tmp_path, "127.0.0.1:%d" % reg.port)
    assert str(info.value) == "pull model manifest: invalid character '<' looking for beginning of value"


@pytest.mark.parametrize("status", [404, 403, 500])
def test_failing_blob_get_is_retried_until_the_deadline(tmp_path, servers, model, monkeypatch, status):
    """HEAD answers but the GET fails: Ollama backs off and retries for 30 s, then gives up."""
    monkeypatch.setattr(registry, "DIRECT_URL_DEADLINE", 0.8)

    def refuse_blob_gets(h) -> bool:
        if h.command == "GET" and "/blobs/" in h.path:
            send(h, status, b"no", {"Content-Type": "text/plain"})
            return True
        return False

    reg = servers(model["files"], refuse_blob_gets)
    with pytest.raises(registry.PullError) as info:
        pull(tmp_path, "127.0.0.1:%d" % reg.port)
    assert str(info.value) == "context deadline exceeded"
    assert len(reg.seen("GET", "/blobs/")) >= 3


def test_same_host_redirect_is_followed_so_the_target_needs_location(tmp_path, servers, model):
    """307 to the same host name (another port even): Go follows it; a target without Location fails."""
    target = servers({"/files/" + sha(d): d for d in (model["layer"], model["config"])}, blob_location=False)

    def redirect(h) -> bool:
        if "/blobs/" in h.path:
            send(h, 307, b"", {"Location": "http://127.0.0.1:%d/files/%s" % (target.port, h.path.rsplit("/", 1)[1])})
            return True
        return False

    front = servers(model["files"], redirect)
    with pytest.raises(registry.PullError) as info:
        pull(tmp_path, "127.0.0.1:%d" % front.port)
    assert str(info.value) == "http: no Location header in response"
    assert target.seen("GET", "/files/")  # the redirect was followed


def test_same_host_redirect_target_with_location_becomes_the_direct_url(tmp_path, servers, model):
    def files_with_location(h) -> bool:
        data = {"/files/" + sha(d): d for d in (model["layer"], model["config"])}.get(h.path)
        if data is None:
            return False
        if "Range" in h.headers:
            start, _, end = h.headers["Range"][6:].partition("-")
            send(h, 206, data[int(start):int(end) + 1], {"Location": h.path})
        else:
            send(h, 200, data, {"Location": h.path})
        return True

    def redirect(h) -> bool:
        if "/blobs/" in h.path:
            send(h, 307, b"", {"Location": "/files/" + h.path.rsplit("/", 1)[1]})
            return True
        return files_with_location(h)

    reg = servers(model["files"], redirect)
    store = pull(tmp_path, "127.0.0.1:%d" % reg.port)
    layer = sha(model["layer"])
    assert open(store.blob_path(layer), "rb").read() == model["layer"]
    # HEAD and the first GET went through the redirect; the parts went straight to the file.
    assert reg.seen("HEAD", "/files/" + layer) and [g.get("range") for g in reg.seen("GET", "/blobs/" + layer)] == [None]
    assert [g.get("range") for g in reg.seen("GET", "/files/" + layer)] == [None, "bytes=0-%d" % (len(model["layer"]) - 1)]


def test_redirect_to_another_host_must_be_a_307(tmp_path, servers, model):
    def found(h) -> bool:
        if h.command == "GET" and "/blobs/" in h.path:
            send(h, 302, b"", {"Location": "http://localhost:1%s" % h.path})
            return True
        return False

    reg = servers(model["files"], found)
    with pytest.raises(registry.PullError) as info:
        pull(tmp_path, "127.0.0.1:%d" % reg.port)
    assert str(info.value) == "unexpected status code 302"


def test_head_stays_head_across_a_303(tmp_path, servers, model):
    def see_other(h) -> bool:
        if h.command == "HEAD" and "/blobs/" in h.path:
            send(h, 303, b"", {"Location": h.path.replace("/blobs/", "/other/")})
            return True
        if "/other/" in h.path:
            data = model["files"][h.path.replace("/other/", "/blobs/")]
            send(h, 200, data, {"Content-Type": "application/octet-stream"})
            return True
        return False

    reg = servers(model["files"], see_other)
    pull(tmp_path, "127.0.0.1:%d" % reg.port)
    assert reg.seen("HEAD", "/other/") and not reg.seen("GET", "/other/")
