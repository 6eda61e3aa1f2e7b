"""Checks for the haproxy role's inputs that an argument spec cannot express.

Every function returns the problems it finds as text that names the item but never contains a
secret (an API key is referred to by its list index and its owner's name only).
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.ollama_fleet.fleet.plugins.module_utils import digests as digest_rules
from ansible_collections.ollama_fleet.fleet.plugins.module_utils import names as name_rules

KEY_RE = re.compile(r"^[A-Za-z0-9._~+/=-]+$")  # RFC 6750 b64token: no spaces, safe in a map file
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
TIME_RE = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?$")
MIN_KEY_LENGTH = 32


def haproxy_api_key_problems(keys):
    """Problems of haproxy_api_keys: empty list, short or malformed keys, duplicates."""
    if not keys:
        return ["haproxy_api_keys is empty: the front would let nobody in. List at least one {name, key}; the production "
                "example reads them from <inventory>/secrets/api-keys.yml, which scripts/site_secrets.py <inventory> makes."]
    problems = []
    names, seen = set(), set()
    for index, item in enumerate(keys):
        item = item if isinstance(item, dict) else {}
        name = str(item.get("name") or "")
        key = str(item.get("key") or "")
        where = "haproxy_api_keys[%d] (%s)" % (index, name or "no name")
        if not NAME_RE.match(name):
            problems.append("%s: name must be letters, digits, '.', '_' or '-'" % where)
        elif name in names:
            problems.append("%s: the name is used twice" % where)
        names.add(name)
        if len(key) < MIN_KEY_LENGTH:
            problems.append("%s: key is shorter than %d characters" % (where, MIN_KEY_LENGTH))
        elif not KEY_RE.match(key):
            problems.append("%s: key may hold only A-Z a-z 0-9 . _ ~ + / = -" % where)
        elif key in seen:
            problems.append("%s: key is the same as an earlier item's" % where)
        seen.add(key)
        models = item.get("models", ["*"])
        if not isinstance(models, list) or not models or not all(isinstance(m, str) and MODEL_RE.match(m) for m in models):
            problems.append("%s: models must be a non-empty list of model names, or ['*'] for every model" % where)
        for field in ("max_in_flight", "requests_per_minute"):
            if field in item and not _positive_int(item[field]):
                problems.append("%s: %s must be a whole number above 0 (got %r)" % (where, field, item[field]))
    return problems


MODEL_RE = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._:/-]*)$")


def _positive_int(value):
    try:
        return not isinstance(value, bool) and int(str(value)) > 0 and str(int(str(value))) == str(value).strip()
    except ValueError:
        return False


def haproxy_key_models(keys, default_models):
    """{owner: models} of haproxy_api_keys, a key without ``models`` getting ``default_models``
    (haproxy_api_key_models); ``['*']`` means every model."""
    return {str(item["name"]): list(item.get("models") or default_models) for item in keys or []}


def haproxy_model_allowlist(keys, default_models):
    """The lines of the allowlist the front matches ``<owner>/<model>`` against, case-insensitively:
    each model a key may call in every spelling Ollama resolves to it (names.spellings). Owners
    with ``['*']`` are not listed here (see haproxy_any_model_owners)."""
    lines = []
    for owner, models in sorted(haproxy_key_models(keys, default_models).items()):
        if "*" in models:
            continue
        for model in models:
            for spelling in name_rules.spellings(model):
                line = "%s/%s" % (owner, spelling)
                if line not in lines:
                    lines.append(line)
    return lines


def haproxy_any_model_owners(keys, default_models):
    """Owners whose key may call every model (``models: ['*']``), and the listing endpoints."""
    return [owner for owner, models in sorted(haproxy_key_models(keys, default_models).items()) if "*" in models]


def haproxy_key_limits(keys, field, default):
    """``<owner> <limit>`` lines of a per-key limit (max_in_flight, requests_per_minute)."""
    return ["%s %d" % (item["name"], int(item.get(field, default))) for item in keys or []]


def haproxy_unservable_models(keys, default_models, servable):
    """``owner: model`` of each allowlisted model the nodes neither pin nor build (``servable``:
    haproxy_servable_models), compared in Ollama's canonical form."""
    known = {name_rules.model_name(n).lower() for s in servable or [] for n in name_rules.spellings(s)}
    bad = []
    for owner, models in sorted(haproxy_key_models(keys, default_models).items()):
        for model in models:
            if model != "*" and name_rules.model_name(model).lower() not in known:
                bad.append("%s: %s" % (owner, model))
    return bad


def haproxy_servable_models(names, hostvars):
    """The models the hosts ``names`` serve: their pins and their customer-service variant."""
    out = []
    for name in names or []:
        hv = hostvars[name]
        found = [p.get("name") for p in hv.get("ollama_models_list") or []]
        if hv.get("ollama_models_cs_enabled", True) and hv.get("ollama_models_cs_name"):
            found.append(hv.get("ollama_models_cs_name"))
        for model in found:
            if model and model not in out:
                out.append(str(model))
    return out


def haproxy_digest_hex(values):
    """The 64-hex form of manifest digests (what /api/tags reports), order kept, no duplicates."""
    out = []
    for digest in values or []:
        hexpart = digest_rules.digest_hex(digest)
        if hexpart not in out:
            out.append(hexpart)
    return out


def haproxy_invalid_digests(values):
    return [str(d) for d in values or [] if not digest_rules.is_digest(str(d).lower())]


def haproxy_invalid_times(values):
    """Names of the {name: value} entries that are not HAProxy times above zero (e.g. 5s, 300s, 2m;
    a zero timeout turns the limit off)."""
    return [name for name, value in (values or {}).items()
            if not TIME_RE.match(str(value)) or not int(re.match(r"[0-9]+", str(value)).group(0))]


def haproxy_shared_addresses(servers):
    """``address:port (a, b)`` of each backend address that two servers share (two nodes with one
    address would get one node's traffic twice)."""
    seen = {}
    for server in servers or []:
        seen.setdefault("%s:%s" % (server["address"], server["port"]), []).append(server["name"])
    return ["%s (%s)" % (where, ", ".join(names)) for where, names in seen.items() if len(names) > 1]


def haproxy_endpoint_problems(endpoints, node_changing, known_methods):
    problems = []
    for index, item in enumerate(endpoints or []):
        item = item if isinstance(item, dict) else {}
        path = str(item.get("path") or "")
        methods = item.get("methods") or []
        where = "haproxy_allowed_endpoints[%d] (%s)" % (index, path or "no path")
        if not path.startswith("/") or re.search(r"[\s?#%]", path):
            problems.append("%s: path must be an exact absolute path without query" % where)
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in node_changing):
            problems.append("%s: changes a node and must never pass the edge" % where)
        bad = [m for m in methods if m not in known_methods]
        if not methods or bad:
            problems.append("%s: methods must be a non-empty list of %s (bad: %s)" % (where, ", ".join(known_methods), bad))
    return problems


def haproxy_valid_bind_address(value):
    value = str(value)
    if value == "*":
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def haproxy_backend_servers(names, hostvars):
    """Backend servers of the hosts `names`: their ollama_bind_address (ansible_host when that is a
    wildcard or unset), ollama_port (11434) and ollama_num_parallel (1) as maxconn."""
    servers = []
    for name in names or []:
        hv = hostvars[name]
        bind = str(hv.get("ollama_bind_address") or "")
        address = bind if bind not in ("", "0.0.0.0", "::") else str(hv.get("ansible_host") or name)
        servers.append({"name": name, "address": address, "port": int(hv.get("ollama_port") or 11434),
                        "maxconn": int(hv.get("ollama_num_parallel") or 1)})
    return servers


def haproxy_serving_digests(names, hostvars):
    """The digests that make each of the hosts `names` worth traffic: the pin of the model its
    customer-service variant is built FROM (ollama_models_cs_from), which is what answers; a host
    without a variant, or whose base is not among its pins, counts all its pinned digests."""
    digests = []
    for name in names or []:
        hv = hostvars[name]
        pins = list(hv.get("ollama_models_list") or [])
        base = str(hv.get("ollama_models_cs_from") or "") if hv.get("ollama_models_cs_enabled", True) else ""
        serving = [p for p in pins if base and p.get("name") in (base, name_rules.model_name(base))]
        for pin in serving or pins:
            if pin.get("digest") and pin["digest"] not in digests:
                digests.append(pin["digest"])
    return digests


class FilterModule:
    def filters(self):
        return {
            "haproxy_serving_digests": haproxy_serving_digests,
            "haproxy_key_models": haproxy_key_models,
            "haproxy_model_allowlist": haproxy_model_allowlist,
            "haproxy_any_model_owners": haproxy_any_model_owners,
            "haproxy_key_limits": haproxy_key_limits,
            "haproxy_unservable_models": haproxy_unservable_models,
            "haproxy_servable_models": haproxy_servable_models,
            "haproxy_api_key_problems": haproxy_api_key_problems,
            "haproxy_digest_hex": haproxy_digest_hex,
            "haproxy_invalid_digests": haproxy_invalid_digests,
            "haproxy_invalid_times": haproxy_invalid_times,
            "haproxy_shared_addresses": haproxy_shared_addresses,
            "haproxy_endpoint_problems": haproxy_endpoint_problems,
            "haproxy_valid_bind_address": haproxy_valid_bind_address,
            "haproxy_backend_servers": haproxy_backend_servers,
        }
