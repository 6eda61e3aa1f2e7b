# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model names, where a model lives, and the URLs Ollama reaches: the one definition of each.

A name is parsed as Ollama parses it (``types/model`` ParseName, ``server/modelpath.go``):
``[[scheme://]host/][namespace/]model[:tag]``, the tag being whatever follows the last ``:``
after the last ``/``. Two parts are namespace and model, never a host: ``example.com/model``
lives on registry.ollama.ai in namespace ``example.com``, exactly where Ollama pulls it from.

Stdlib only, Python 3.6+ and no Ansible import: the filters, the modules and the node-side
metrics script (roles/ollama_metrics, which loads this file by path) all use it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
from collections import namedtuple

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

ModelName = namedtuple("ModelName", "scheme host namespace model tag")

# A server bound to every address is reached on the loopback of the same family: "::" may be
# IPv6-only (net.ipv6.bindv6only=1), so it gets ::1, not 127.0.0.1.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}


def parse(name):
    """The ModelName of ``name``, the gaps filled as Ollama fills them (registry.ollama.ai,
    library, latest, https)."""
    text = str(name).strip()
    tag = ""
    if text.rfind(":") > text.rfind("/"):
        text, tag = text.rsplit(":", 1)
    parts = text.split("/")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else ""
    host = "/".join(parts[:-2])
    scheme = ""
    if "://" in host:
        scheme, host = host.split("://", 1)
    return ModelName(scheme or DEFAULT_SCHEME, host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE,
                     model, tag or DEFAULT_TAG)


def model_name(name):
    """The name as /api/tags and /api/ps list it: ``qwen3-cs`` -> ``qwen3-cs:latest``; a name
    that has a tag is kept as written (Ollama lists the shortest form of what was pulled)."""
    name = str(name)
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":" + DEFAULT_TAG


def spellings(name):
    """Every way of writing ``name`` that Ollama resolves to the same model: the defaults it fills
    (``registry.ollama.ai``, ``library``, ``latest``) written or left out. ``qwen3-cs`` gives
    ``qwen3-cs``, ``qwen3-cs:latest``, ``library/qwen3-cs``, ... ``registry.ollama.ai/library/qwen3-cs:latest``."""
    p = parse(name)
    tags = [":" + p.tag] + ([""] if p.tag == DEFAULT_TAG else [])
    bases = []
    if p.host == DEFAULT_HOST and p.namespace == DEFAULT_NAMESPACE:
        bases.append(p.model)
    if p.host == DEFAULT_HOST:
        bases.append(p.namespace + "/" + p.model)
    bases.append(p.host + "/" + p.namespace + "/" + p.model)
    return [base + tag for base in bases for tag in tags]


def mirrored_name(name, mirror):
    """The name a node pulls ``name`` under from the site mirror ``mirror`` (``host:port``): the
    mirror is the host, namespace and model stay (``qwen3:4b`` -> ``m:8080/library/qwen3:4b``)."""
    parsed = parse(name)
    return "%s/%s/%s:%s" % (mirror, parsed.namespace, parsed.model, parsed.tag)


def registry_path(name):
    """``<namespace>/<model>/<tag>``: the model's place under a registry's ``/v2/`` tree (the
    site mirror's ``registry/manifests/`` holds it there too)."""
    parsed = parse(name)
    return "%s/%s/%s" % (parsed.namespace, parsed.model, parsed.tag)


def manifest_path(name):
    """``<host>/<namespace>/<model>/<tag>``: the manifest's place under ``manifests/`` in an
    OLLAMA_MODELS store, and so in a bundle."""
    parsed = parse(name)
    return "%s/%s/%s/%s" % (parsed.host, parsed.namespace, parsed.model, parsed.tag)


def manifest_url(name, insecure=False):
    """The URL Ollama's pull fetches the manifest of ``name`` from (plain HTTP when ``insecure``)."""
    parsed = parse(name)
    scheme = "http" if insecure else parsed.scheme
    return "%s://%s/v2/%s/%s/manifests/%s" % (scheme, parsed.host, parsed.namespace, parsed.model, parsed.tag)


def blob_url(name, digest, insecure=False):
    """The URL Ollama's pull fetches one layer of ``name`` from (``digest`` as ``sha256:<hex>``)."""
    parsed = parse(name)
    scheme = "http" if insecure else parsed.scheme
    return "%s://%s/v2/%s/%s/blobs/%s" % (scheme, parsed.host, parsed.namespace, parsed.model, digest)


def source_name(model):
    """The name a node pulls an item of ollama_models_list under: its own name for the
    ``registry`` source, the mirror's for ``mirror``; '' for a source that pulls nothing."""
    source = model.get("source") or "registry"
    if source == "registry":
        return str(model["name"])
    if source == "mirror":
        return mirrored_name(model["name"], model["mirror"])
    return ""


def backup_name(name):
    """A name to keep the installed manifest of ``name`` under while a pull replaces it:
    ``ollama-models-backup/<model>:<12 hex of the full name>``, valid whatever host or namespace
    the original has, and never a name a site pins."""
    return "ollama-models-backup/%s:%s" % (parse(name).model, hashlib.sha1(str(name).encode("utf-8")).hexdigest()[:12])


def rollback_name(name):
    """A name to keep a serving model's manifest under during a rolling upgrade, so that a node
    whose switch fails can serve it again: ``ollama-fleet-rollback/<model>:<12 hex of the full
    name>`` (not backup_name's: a pull's own backup is removed when the pull succeeds)."""
    return "ollama-fleet-rollback/%s:%s" % (parse(name).model, hashlib.sha1(str(name).encode("utf-8")).hexdigest()[:12])


def api_url(bind_address, port=11434, scheme="http"):
    """``http://host:port`` for a node's own API; a wildcard bind address is reached on loopback
    (unset or 0.0.0.0: 127.0.0.1; ``::``: ``[::1]``); an IPv6 address is bracketed."""
    host = "" if bind_address is None else str(bind_address).strip()
    host = _LOOPBACK.get(host, host).strip("[]")
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s:%d" % (scheme, host, int(port))


def host_port(address, port):
    """``address:port`` with an IPv6 address bracketed (``[fd00::5]:8080``)."""
    address = str(address).strip()
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "%s:%d" % (address, int(port))
