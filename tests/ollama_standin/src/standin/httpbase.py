"""HTTP plumbing for the stand-in server: Go-like request binding and responses."""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, Optional

from . import gofmt

JSON_TYPE = "application/json; charset=utf-8"


class BindError(Exception):
    """A request body that Go's ShouldBindJSON would reject (400)."""


_GO_TYPES = {str: "string", bool: "bool", list: "array", dict: "object", int: "number", float: "number"}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    for pytype, name in _GO_TYPES.items():
        if isinstance(value, pytype) and not (pytype is int and isinstance(value, bool)):
            return name
    return "value"


def bind_json(body: bytes, struct: str, fields: Dict[str, type]) -> Dict[str, Any]:
    """Decode a JSON body like gin's ShouldBindJSON into api.<struct>."""
    text = body.decode("utf-8", "replace").lstrip()
    if not text:
        raise BindError("missing request body")
    try:
        value, _end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise BindError("unexpected EOF") from None
        raise BindError("invalid character %s looking for beginning of value" % _go_char(text[exc.pos])) from None
    if not isinstance(value, dict):
        raise BindError("json: cannot unmarshal %s into Go value of type api.%s" % (_json_kind(value), struct))
    for key, expected in fields.items():
        if key in value and value[key] is not None:
            got = value[key]
            ok = isinstance(got, expected) and not (expected in (int, float) and isinstance(got, bool))
            if expected is float and isinstance(got, int) and not isinstance(got, bool):
                ok = True
            if not ok:
                raise BindError(
                    "json: cannot unmarshal %s into Go struct field %s.%s of type %s"
                    % (_json_kind(got), struct, key, _GO_TYPES.get(expected, "value").replace("array", "[]").replace("object", "map"))
                )
    return value


def _go_char(ch: str) -> str:
    return "'%s'" % ch if ch != "'" else "'\\''"


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler with chunked streaming and GIN-style request logging."""

    protocol_version = "HTTP/1.1"
    status_code = 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base-class signature
        return  # request lines are logged GIN-style by log_request_line

    def log_request_line(self, started: float) -> None:
        latency = gofmt.duration_string(int((time.monotonic() - started) * 1e9))
        line = '[GIN] %s | %3d | %13s | %15s | %-7s "%s"\n' % (
            time.strftime("%Y/%m/%d - %H:%M:%S"),
            self.status_code,
            latency,
            self.client_address[0],
            self.command,
            self.path,
        )
        sys.stderr.write(line)
        sys.stderr.flush()

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        """Like the base class but without a Server header (Go's net/http sends none)."""
        self.status_code = code
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    # -- request body -------------------------------------------------------------
    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- responses -----------------------------------------------------------------
    def send_bytes(self, status: int, body: bytes, content_type: str, extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status: int, obj: Any) -> None:
        self.send_bytes(status, gofmt.go_json(obj), JSON_TYPE)

    def send_error_json(self, status: int, message: str) -> None:
        self.send_json(status, {"error": message})

    def send_text(self, status: int, text: str) -> None:
        self.send_bytes(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def send_empty(self, status: int) -> None:
        self.send_bytes(status, b"", "")


class ChunkedStream:
    """A streamed (chunked) response, started lazily like gin's c.Stream."""

    def __init__(self, handler: BaseHandler, content_type: str) -> None:
        self.handler = handler
        self.content_type = content_type
        self.started = False
        self.finished = False

    def start(self) -> None:
        if not self.started:
            self.handler.send_response(200)
            self.handler.send_header("Content-Type", self.content_type)
            self.handler.send_header("Transfer-Encoding", "chunked")
            self.handler.end_headers()
            self.started = True

    def write_raw(self, data: bytes) -> None:
        self.start()
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.handler.wfile.flush()

    def write_json(self, obj: Any) -> None:
        self.write_raw(gofmt.go_json(obj) + b"\n")

    def error(self, message: str, status: int = 500) -> None:
        """Errors before any output become a plain JSON error response; later ones a stream line."""
        if not self.started:
            self.handler.send_error_json(status, message)
            self.finished = True
            return
        self.write_json({"error": message})

    def end(self) -> None:
        if self.finished:
            return
        self.start()
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()
        self.finished = True
