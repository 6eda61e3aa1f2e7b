"""Filters shared by the roles that talk to Ollama's API (ollama_models, ollama_verify).

Each rule is written once, here:
- ollama_api_url: the URL a node uses to reach its own Ollama from ollama_bind_address/ollama_port;
- ollama_model_name: a model name as Ollama lists it (the implicit ``:latest`` tag made explicit);
- ollama_digests: an /api/tags (or /api/ps) body as {name: manifest digest (64 hex)};
- ollama_unmet_pins: the ``name@digest`` pins such a body does not satisfy;
- ollama_serving_guard: whether a change that interrupts a node (restart, reboot, a new model pin)
  may go ahead outside playbooks/upgrade.yml, and if not, the message that says why;
- ollama_site_mirror: ``host:port`` of the site mirror (the first host of ``mirror_nodes``) or '';
- ollama_manifest_url: the URL Ollama fetches a model's manifest from (registry or mirror source);
- ollama_pins: the pins of a models list as the site mirror serves them (ollama_mirror_models);
- ollama_moved_pins: what fetching those manifests found against the pins (the check before any pull).

Found through ``filter_plugins`` in ansible.cfg (ansible-playbook and ansible-lint from the
repository root) and ANSIBLE_FILTER_PLUGINS in .config/molecule/config.yml (Molecule writes its
own ansible.cfg). Stdlib only, Python 3.6+: the ollama_metrics role also ships this file to each
node, where its metrics script checks the pins by the same rule without Ansible.
"""

import hashlib
import re

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # on a node, imported by the metrics script
    AnsibleFilterError = ValueError

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


def ollama_unmet_pins(pins, body, moved_only=False):
    """``name@digest`` of each pin ({name, digest}) that the /api/tags body does not list at its
    digest; with ``moved_only``, only of those it lists at another digest (a pin that changed)."""
    installed = ollama_digests(body)
    unmet = []
    for pin in pins or []:
        name, digest = ollama_model_name(pin["name"]), _digest(pin["digest"])
        if installed.get(name) != digest and (installed.get(name) or not moved_only):
            unmet.append("%s@%s" % (name, digest))
    return unmet


def ollama_serving_guard(interruptions, host, serving, load_balancers, drained=False):
    """'' when the ``interruptions`` (a list of reasons, e.g. ["version 0.33.1 switched in"]) may
    happen on ``host`` now, else the refusal. They may when there are none, when the node does not
    serve (``serving`` false), when the fleet has no front to take its traffic elsewhere (no
    ``load_balancers``: nothing can drain it), or when playbooks/upgrade.yml drained it first
    (``drained``, i.e. ollama_node_drained). Otherwise the change would cut the streams in flight
    (Ollama closes them on SIGTERM) and, for a new pin, fail the front's health check of a node
    that still serves: it must go through the rolling upgrade."""
    reasons = [str(r) for r in interruptions or [] if r]
    if not reasons or not serving or not load_balancers or drained:
        return ""
    return (
        "%s serves customers behind the front, and this run would interrupt it (%s). The running service was left as it was. "
        "Roll the change through the fleet one node at a time, drained from the load balancers first: "
        "ansible-playbook -i <inventory> playbooks/upgrade.yml" % (host, "; ".join(reasons))
    )


def ollama_site_mirror(groups, hostvars, group="mirror_nodes"):
    """``host:port`` the nodes reach the site mirror at: the first host of ``group`` (its
    ollama_mirror_bind_address unless that is ``*``, else its ansible_host, else its name) and its
    ollama_mirror_port (8080 unless its inventory sets one); '' when the group has no host, so
    ``'mirror' if groups | ollama_site_mirror(hostvars) else 'release'`` picks a source."""
    members = list((groups or {}).get(group) or [])
    if not members:
        return ""
    name = members[0]
    mirror = hostvars[name]
    address = str(mirror.get("ollama_mirror_bind_address") or "*")
    if address == "*":
        address = str(mirror.get("ansible_host") or name)
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    port = int(mirror.get("ollama_mirror_port") or 8080)
    return "%s:%d" % (address, port)


def ollama_manifest_url(model):
    """The URL Ollama's pull fetches the manifest of ``model`` (an item of ollama_models_list) from:
    source ``mirror``: ``<mirror>/<namespace>/<model>:<tag>``; source ``registry``: the name's own
    host or registry.ollama.ai; namespace ``library`` when the name has none; plain HTTP when
    ``insecure``, else HTTPS (as Ollama's ParseModelPath). '' for any other source."""
    source = model.get("source") or "registry"
    name = str(model["name"])
    if source == "mirror":
        name = "%s/%s" % (model["mirror"], name if "/" in name else "library/" + name)
    elif source != "registry":
        return ""
    path, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, ":", "latest")
    parts = path.split("/")
    host = "registry.ollama.ai"
    if len(parts) == 3 or (len(parts) == 2 and ("." in parts[0] or ":" in parts[0])):
        host, parts = parts[0], parts[1:]
    if len(parts) == 1:
        parts = ["library"] + parts
    scheme = "http" if model.get("insecure") in (True, "true", "True", "yes") else "https"
    return "%s://%s/v2/%s/%s/manifests/%s" % (scheme, host, parts[0], parts[1], tag)


def ollama_pins(names, digests, bundles):
    """``[{name, digest, bundle}]`` for the site mirror's ollama_mirror_models from the nodes'
    ollama_models_list, so the pins are written once. The caller passes the lists of names, digests
    and bundles (one for all, or one per model) through ``map(attribute=...)``: read through another
    host's hostvars, a node's ``source`` and ``mirror`` (which name the mirror through ``hostvars``,
    undefined there) must never be templated, and a filter given the whole items would template them."""
    names, digests = list(names or []), list(digests or [])
    if isinstance(bundles, str):
        bundles = [bundles] * len(names)
    bundles = list(bundles or [])
    if not len(names) == len(digests) == len(bundles):
        raise AnsibleFilterError("ollama_pins: %d names, %d digests, %d bundles" % (len(names), len(digests), len(bundles)))
    return [{"name": n, "digest": d, "bundle": b} for n, d, b in zip(names, digests, bundles)]


def ollama_moved_pins(results):
    """One message per pin its source does not serve: ``results`` are the registered results of a
    looped ``uri`` (the loop variable a model of ollama_models_list, ``content`` the manifest's bytes as
    text, ``status``); skipped items are ignored. The pin is the sha256 of the manifest's bytes."""
    moved = []
    for result in results or []:
        if not isinstance(result, dict) or result.get("skipped"):
            continue
        item = result.get(result.get("ansible_loop_var") or "item") or {}
        want = _digest(item.get("digest"))
        where = result.get("url") or ollama_manifest_url(item)
        if result.get("status") != 200:
            moved.append("%s: %s answered %s (%s)" % (item.get("name"), where, result.get("status"), result.get("msg", "")))
            continue
        got = hashlib.sha256(str(result.get("content", "")).encode("utf-8")).hexdigest()
        if got != want:
            moved.append("%s: %s serves manifest sha256:%s, the pin is sha256:%s (the tag has moved)" % (item.get("name"), where, got, want))
    return moved


class FilterModule:
    def filters(self):
        return {
            "ollama_api_url": ollama_api_url,
            "ollama_model_name": ollama_model_name,
            "ollama_digests": ollama_digests,
            "ollama_unmet_pins": ollama_unmet_pins,
            "ollama_serving_guard": ollama_serving_guard,
            "ollama_site_mirror": ollama_site_mirror,
            "ollama_manifest_url": ollama_manifest_url,
            "ollama_moved_pins": ollama_moved_pins,
            "ollama_pins": ollama_pins,
        }
