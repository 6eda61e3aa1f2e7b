#!/usr/bin/env python3
"""Serve a make_registry_tree.py tree as a registry that real Ollama can pull from (test fixture).

    python3 tests/ollama_standin/serve_registry.py --root TREE [--bind 127.0.0.1] [--port 0] [--redirect-host NAME]

Static files with HEAD and Range support.  Ollama (server/download.go) resolves a
blob's "direct URL" from the first GET: it must be a redirect to another host name
or carry a Location header.  By default blob answers carry `Location: <own path>`;
with --redirect-host, blob GETs are answered 307 to http://NAME:<port><path>, like
registry.ollama.ai redirecting to its CDN.  Stdlib only; prints the bound port.
"""

import argparse
import os
import posixpath
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import unquote


class RegistryHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    redirect_host: Optional[str] = None

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - base-class signature
        sys.stderr.write("[registry fixture] %s\n" % (format % args))

    def _file(self) -> Optional[str]:
        path = posixpath.normpath(unquote(self.path.split("?", 1)[0]))
        full = os.path.join(self.directory, path.lstrip("/"))
        return full if os.path.isfile(full) else None

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        full = self._file()
        if full is None:
            self._plain(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            return
        is_blob = "/blobs/" in self.path
        if body and is_blob and self.redirect_host and "Range" not in self.headers:
            port = self.server.server_address[1]
            self.send_response(307)
            self.send_header("Location", "http://%s:%d%s" % (self.redirect_host, port, self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(full)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes="):
            sys.stderr.write("[registry fixture] range %s %s\n" % (rng, self.path))
            first, _, last = rng[6:].partition("-")
            start = int(first or 0)
            end = min(int(last), size - 1) if last else size - 1
            status = 206
        self.send_response(status)
        ctype = "application/vnd.docker.distribution.manifest.v2+json" if "/manifests/" in self.path else "application/octet-stream"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(max(end - start + 1, 0)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        if is_blob and not self.redirect_host:
            self.send_header("Location", self.path)
        self.end_headers()
        if not body:
            return
        with open(full, "rb") as f:
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = f.read(min(1 << 20, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--redirect-host", default=None)
    args = ap.parse_args()
    RegistryHandler.redirect_host = args.redirect_host
    root = os.path.abspath(args.root)

    def handler(*a, **kw):
        return RegistryHandler(*a, directory=root, **kw)

    httpd = ThreadingHTTPServer((args.bind, args.port), handler)
    print(httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
