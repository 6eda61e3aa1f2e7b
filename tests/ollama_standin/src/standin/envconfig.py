"""Environment configuration, parsed the way Ollama's envconfig package does."""

import ipaddress
import os
from typing import Dict, List, NamedTuple

from . import gofmt

DEFAULT_PORT = "11434"


def var(key: str) -> str:
    """An environment variable stripped of surrounding spaces and quotes."""
    return os.environ.get(key, "").strip().strip("\"'")


class HostURL(NamedTuple):
    scheme: str
    host: str  # bare host, no brackets
    port: str
    path: str

    @property
    def hostport(self) -> str:
        return gofmt.join_host_port(self.host, self.port)

    def url(self) -> str:
        base = "%s://%s" % (self.scheme, self.hostport)
        return base + ("/" + self.path if self.path else "")


def host() -> HostURL:
    """OLLAMA_HOST: bare host, :port, host:port, scheme://..., [ipv6]; default 127.0.0.1:11434."""
    default_port = DEFAULT_PORT
    raw = var("OLLAMA_HOST")
    scheme, sep, hostport = raw.partition("://")
    if not sep:
        scheme, hostport = "http", raw
        if raw == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = hostport.partition("/")
    try:
        hostname, port = gofmt.split_host_port(hostport)
    except ValueError:
        hostname, port = "127.0.0.1", default_port
        try:
            hostname = str(ipaddress.ip_address(hostport.strip("[]")))
        except ValueError:
            if hostport:
                hostname = hostport
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    return HostURL(scheme, hostname, port, path)


def models_dir() -> str:
    return var("OLLAMA_MODELS") or os.path.join(os.path.expanduser("~"), ".ollama", "models")


def keep_alive_ns() -> int:
    """OLLAMA_KEEP_ALIVE: Go duration or integer seconds; negative means forever."""
    value = 5 * gofmt.MINUTE
    raw = var("OLLAMA_KEEP_ALIVE")
    if raw:
        try:
            value = gofmt.parse_duration(raw)
        except ValueError:
            try:
                value = int(raw) * gofmt.SECOND
            except ValueError:
                pass
    return gofmt.MAX_DURATION if value < 0 else value


def uint(key: str, default: int) -> int:
    raw = var(key)
    if raw.isdigit():
        return int(raw)
    return default


def boolean(key: str, default: bool = False) -> bool:
    """strconv.ParseBool semantics; an unparsable non-empty value counts as true."""
    raw = var(key)
    if not raw:
        return default
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return True


def num_parallel() -> int:
    return max(uint("OLLAMA_NUM_PARALLEL", 1), 1)


def max_queue() -> int:
    return uint("OLLAMA_MAX_QUEUE", 512)


def max_loaded_models() -> int:
    return uint("OLLAMA_MAX_LOADED_MODELS", 0)


def context_length() -> int:
    return uint("OLLAMA_CONTEXT_LENGTH", 0)


def allowed_origins() -> List[str]:
    origins = [o for o in var("OLLAMA_ORIGINS").split(",") if o] if var("OLLAMA_ORIGINS") else []
    for origin in ("localhost", "127.0.0.1", "0.0.0.0"):
        origins += ["http://" + origin, "https://" + origin, "http://%s:*" % origin, "https://%s:*" % origin]
    return origins + ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]


def values() -> Dict[str, str]:
    """The env map printed in the 'server config' log line (the subset the stand-in honours)."""
    return {
        "OLLAMA_CONTEXT_LENGTH": str(context_length()),
        "OLLAMA_DEBUG": "INFO",
        "OLLAMA_FLASH_ATTENTION": "true" if boolean("OLLAMA_FLASH_ATTENTION") else "false",
        "OLLAMA_HOST": host().url(),
        "OLLAMA_KEEP_ALIVE": gofmt.duration_string(keep_alive_ns()),
        "OLLAMA_MAX_LOADED_MODELS": str(max_loaded_models()),
        "OLLAMA_MAX_QUEUE": str(max_queue()),
        "OLLAMA_MODELS": models_dir(),
        "OLLAMA_NOPRUNE": "true" if boolean("OLLAMA_NOPRUNE") else "false",
        "OLLAMA_NO_CLOUD": "true" if boolean("OLLAMA_NO_CLOUD") else "false",
        "OLLAMA_NUM_PARALLEL": str(uint("OLLAMA_NUM_PARALLEL", 1)),
        "OLLAMA_ORIGINS": "[" + " ".join(allowed_origins()) + "]",
        "HTTPS_PROXY": var("HTTPS_PROXY"),
        "HTTP_PROXY": var("HTTP_PROXY"),
        "NO_PROXY": var("NO_PROXY"),
    }
