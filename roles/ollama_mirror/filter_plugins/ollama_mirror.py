"""Filters of the ollama_mirror role: where a model lives in a bundle and on the mirror, the sha256
a release's sha256sum.txt gives an archive, and nginx's listen value. Stdlib only."""

from __future__ import annotations

import re

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"


def _parts(name):
    """(host, namespace, model, tag) of [host/][namespace/]model:tag, as Ollama fills the gaps."""
    name = str(name)
    path, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    elems = path.split("/")
    model = elems[-1]
    namespace = elems[-2] if len(elems) >= 2 else DEFAULT_NAMESPACE
    host = elems[-3] if len(elems) >= 3 else DEFAULT_HOST
    return host, namespace, model, tag


def ollama_mirror_path(name):
    """``<namespace>/<model>/<tag>``: the name's place under /v2/ (and under registry/manifests/)."""
    _host, namespace, model, tag = _parts(name)
    return "%s/%s/%s" % (namespace, model, tag)


def ollama_mirror_bundle_path(name):
    """``<host>/<namespace>/<model>/<tag>``: the manifest's place under a bundle's manifests/."""
    return "%s/%s/%s/%s" % _parts(name)


def ollama_mirror_archive_sha256(archive, sums_text):
    """The lowercase sha256 that the text of a sha256sum.txt (``<hex>  [*][./]<file>`` lines) gives `archive`; '' if none."""
    pattern = re.compile(r"^([0-9a-fA-F]{64}) +\*?(\./)?" + re.escape(str(archive)) + r" *$")
    for line in str(sums_text or "").splitlines():
        match = pattern.match(line.rstrip("\r"))
        if match:
            return match.group(1).lower()
    return ""


def ollama_mirror_listen(bind_address, port):
    """nginx's ``listen`` value: ``*:8080``, ``10.0.0.5:8080`` or ``[fd00::5]:8080``."""
    host = str(bind_address).strip()
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "%s:%d" % (host, int(port))


class FilterModule:
    def filters(self):
        return {
            "ollama_mirror_path": ollama_mirror_path,
            "ollama_mirror_bundle_path": ollama_mirror_bundle_path,
            "ollama_mirror_archive_sha256": ollama_mirror_archive_sha256,
            "ollama_mirror_listen": ollama_mirror_listen,
        }
