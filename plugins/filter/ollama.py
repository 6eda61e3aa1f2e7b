"""Filters shared by the roles that talk to Ollama's API (ollama_models, ollama_verify).

Each rule is written once, here:
- ollama_api_url: the URL a node uses to reach its own Ollama from ollama_bind_address/ollama_port;
- ollama_model_name: a model name as Ollama lists it (the implicit ``:latest`` tag made explicit);
- ollama_digests: an /api/tags (or /api/ps) body as {name: manifest digest (64 hex)};
- ollama_unmet_pins: the ``name@digest`` pins such a body does not satisfy.

Found through ``filter_plugins`` in ansible.cfg (ansible-playbook and ansible-lint from the
repository root) and ANSIBLE_FILTER_PLUGINS in .config/molecule/config.yml (Molecule writes its
own ansible.cfg). Stdlib only.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# A server bound to every address is reached on the loopback of the same family: "::" may be
# IPv6-only (net.ipv6.bindv6only=1), so it gets ::1, not 127.0.0.1.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}
_HEX64 = re.compile(r"^(sha256:)?([0-9a-f]{64})$")


def ollama_api_url(bind_address, port=11434, scheme="http"):
    """``http://host:port`` for a node's own API; a wildcard bind address is reached on loopback
    (unset or 0.0.0.0: 127.0.0.1; ``::``: ``[::1]``); an IPv6 address is bracketed."""
    host = "" if bind_address is None else str(bind_address).strip()
    host = _LOOPBACK.get(host, host).strip("[]")
    if ":" in host:
        host = "[%s]" % host
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise AnsibleFilterError("ollama_api_url: port must be a number, got %r" % (port,))
    return "%s://%s:%d" % (scheme, host, port)


def ollama_model_name(name):
    """The name as /api/tags and /api/ps list it: ``qwen3-cs`` -> ``qwen3-cs:latest``.

    Only the last path element can carry a tag (``host:port/ns/model`` has none)."""
    name = str(name)
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _digest(value):
    match = _HEX64.match(str(value or ""))
    return match.group(2) if match else str(value or "")


def ollama_digests(body):
    """{name: digest} of an /api/tags or /api/ps response body; {} for a missing body.

    A missing body (None, undefined-turned-empty, or a check-mode run against a host where
    Ollama is not installed yet) reads as "nothing installed"."""
    if not isinstance(body, dict):
        return {}
    out = {}
    for model in body.get("models") or []:
        if isinstance(model, dict) and model.get("name"):
            out[model["name"]] = _digest(model.get("digest"))
    return out


def ollama_unmet_pins(pins, body):
    """``name@digest`` of each pin ({name, digest}) that the /api/tags body does not list at its digest."""
    installed = ollama_digests(body)
    unmet = []
    for pin in pins or []:
        name, digest = ollama_model_name(pin["name"]), _digest(pin["digest"])
        if installed.get(name) != digest:
            unmet.append("%s@%s" % (name, digest))
    return unmet


class FilterModule:
    def filters(self):
        return {
            "ollama_api_url": ollama_api_url,
            "ollama_model_name": ollama_model_name,
            "ollama_digests": ollama_digests,
            "ollama_unmet_pins": ollama_unmet_pins,
        }
