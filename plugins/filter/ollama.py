# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the fleet's shared rules (plugins/module_utils: names, digests), for templates
and tasks. Each filter is a thin wrapper: the rule itself is written once, in module_utils, and
the modules and the node-side metrics script use the same functions.

Called by their fully qualified names, e.g. ``{{ x | ollama_fleet.fleet.ollama_api_url }}``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from ansible.errors import AnsibleFilterError

from ansible_collections.ollama_fleet.fleet.plugins.module_utils import bundle, digests, golden, names

try:
    import yaml
except ImportError:  # pragma: no cover - Ansible itself needs PyYAML
    yaml = None

def ollama_api_url(bind_address, port=11434, scheme="http"):
    """``http://host:port`` for a node's own API (names.api_url)."""
    try:
        return names.api_url(bind_address, port, scheme)
    except (TypeError, ValueError):
        raise AnsibleFilterError("ollama_api_url: port must be a number, got %r" % (port,))


def ollama_model_name(name):
    """The name as /api/tags lists it: the implicit ``:latest`` made explicit (names.model_name)."""
    return names.model_name(name)


def ollama_digest_hex(value):
    """The 64-hex form of a digest, ``sha256:`` dropped (digests.digest_hex)."""
    return digests.digest_hex(value)


def ollama_is_digest(value):
    """True for ``sha256:<64 hex>`` or ``<64 hex>`` (digests.is_digest)."""
    return digests.is_digest(value)


def ollama_blob_filename(digest):
    """``sha256-<hex>``, a blob's file name in a store (digests.blob_filename)."""
    return digests.blob_filename(digest)


def ollama_manifest_path(name):
    """``host/namespace/model/tag``: the manifest's path under a store's or bundle's manifests/."""
    return names.manifest_path(name)


def ollama_bundle_manifest(models_dir, name):
    """``<models_dir>/manifests/<host>/<ns>/<model>/<tag>``: a model's manifest in an OLLAMA_MODELS directory (bundle.store_manifest)."""
    return "%s/%s" % (str(models_dir).rstrip("/"), bundle.store_manifest(name))


def ollama_bundle_blob(models_dir, digest):
    """``<models_dir>/blobs/sha256-<hex>``: a blob in an OLLAMA_MODELS directory (bundle.store_blob)."""
    return "%s/%s" % (str(models_dir).rstrip("/"), bundle.store_blob(digest))


def ollama_artifacts(root, what, version=None):
    """A site bundle's ``release`` directory (of ``version``), ``models`` directory or ``lock`` (bundle.artifacts_path)."""
    try:
        return bundle.artifacts_path(root, what, version)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def ollama_release_archive(version, arch):
    """``ollama-linux-<arch>.tar.zst`` (0.14.0 on) or ``.tgz``: the archive Ollama publishes (bundle.release_archive)."""
    return bundle.release_archive(version, arch)


def ollama_registry_path(name):
    """``namespace/model/tag``: the model's path under a registry's /v2/ (and the mirror's tree)."""
    return names.registry_path(name)


def ollama_host_port(address, port):
    """``address:port``, IPv6 bracketed (names.host_port)."""
    return names.host_port(address, port)


def ollama_sha256sum(filename, text):
    """The sha256 that ``text``, a ``sha256sum.txt``, gives ``filename``; '' if none (digests.sha256sum_lookup)."""
    return digests.sha256sum_lookup(text, filename)


def ollama_release_pins(text):
    """``{arch: sha256}`` of the Linux archives in a release's sha256sum.txt (digests.release_pins)."""
    return digests.release_pins(text)


def ollama_release_pin(pins, version, arch):
    """The sha256 ollama_release_pins gives ``version`` on ``arch``; '' if none (digests.release_pin)."""
    return digests.release_pin(pins, version, arch)


def ollama_digests(body):
    """{name: digest hex} of an /api/tags or /api/ps body; {} for a missing body (digests.tags_digests)."""
    return digests.tags_digests(body)


def ollama_unmet_pins(pins, body, moved_only=False):
    """``name@digest`` of each pin the /api/tags body does not satisfy (digests.unmet_pins)."""
    return digests.unmet_pins(pins, body, moved_only)


def ollama_source_name(model):
    """The name a node pulls an item of ollama_models_list under (names.source_name)."""
    return names.source_name(model)


def ollama_backup_name(name):
    """The name the installed manifest is kept under while a pull replaces it (names.backup_name)."""
    return names.backup_name(name)


def ollama_manifest_url(model):
    """The URL Ollama's pull fetches the manifest of an item of ollama_models_list from: its own
    name's host for ``registry``, the site mirror for ``mirror`` (plain HTTP when ``insecure``);
    '' for a source that pulls nothing."""
    pulled = names.source_name(model)
    if not pulled:
        return ""
    return names.manifest_url(pulled, model.get("insecure") in (True, "true", "True", "yes"))


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
    ollama_mirror_port (8080 unless its inventory sets one); '' when the group has no host."""
    members = list((groups or {}).get(group) or [])
    if not members:
        return ""
    mirror = hostvars[members[0]]
    address = str(mirror.get("ollama_mirror_bind_address") or "*")
    if address == "*":
        address = str(mirror.get("ansible_host") or members[0])
    return names.host_port(address, int(mirror.get("ollama_mirror_port") or 8080))


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
    looped ``uri`` (the loop variable an item of ollama_models_list, ``content`` the manifest's
    bytes as text, ``status``); skipped items are ignored. The pin is the sha256 of those bytes."""
    moved = []
    for result in results or []:
        if not isinstance(result, dict) or result.get("skipped"):
            continue
        item = result.get(result.get("ansible_loop_var") or "item") or {}
        want = digests.digest_hex(item.get("digest"))
        where = result.get("url") or ollama_manifest_url(item)
        if result.get("status") != 200:
            moved.append("%s: %s answered %s (%s)" % (item.get("name"), where, result.get("status"), result.get("msg", "")))
            continue
        got = digests.sha256_bytes(str(result.get("content", "")).encode("utf-8"))
        if got != want:
            moved.append("%s: %s serves manifest sha256:%s, the pin is sha256:%s (the tag has moved)" % (item.get("name"), where, got, want))
    return moved


def _golden_data(text):
    """The parsed golden file, or (None, problem) when the text does not parse."""
    if isinstance(text, dict):
        return text, None
    try:
        return yaml.safe_load(str(text)), None
    except yaml.YAMLError as exc:
        return None, "does not parse as YAML: %s" % " ".join(str(exc).split())


def ollama_golden_problems(text):
    """What is wrong with a golden file's text (empty when usable; golden.problems)."""
    data, problem = _golden_data(text)
    return [problem] if problem else golden.problems(data)


def ollama_golden_cases(text):
    """The cases of a usable golden file's text, as the golden file writes them (golden.problems)."""
    data, problem = _golden_data(text)
    found = [problem] if problem else golden.problems(data)
    if found:
        raise AnsibleFilterError("ollama_golden_cases: " + "; ".join(found))
    return data["cases"]


def ollama_rollback_name(name):
    """The name a serving model is kept under while upgrade.yml switches its node (names.rollback_name)."""
    return names.rollback_name(name)


def ollama_golden_metrics(result, model, digest):
    """The golden set's result as node exporter textfile lines (golden.metrics_text)."""
    return golden.metrics_text(result, model, digest)


class FilterModule:
    def filters(self):
        return {
            "ollama_api_url": ollama_api_url,
            "ollama_model_name": ollama_model_name,
            "ollama_digest_hex": ollama_digest_hex,
            "ollama_is_digest": ollama_is_digest,
            "ollama_blob_filename": ollama_blob_filename,
            "ollama_manifest_path": ollama_manifest_path,
            "ollama_registry_path": ollama_registry_path,
            "ollama_host_port": ollama_host_port,
            "ollama_sha256sum": ollama_sha256sum,
            "ollama_digests": ollama_digests,
            "ollama_unmet_pins": ollama_unmet_pins,
            "ollama_release_pins": ollama_release_pins,
            "ollama_release_pin": ollama_release_pin,
            "ollama_source_name": ollama_source_name,
            "ollama_backup_name": ollama_backup_name,
            "ollama_serving_guard": ollama_serving_guard,
            "ollama_site_mirror": ollama_site_mirror,
            "ollama_manifest_url": ollama_manifest_url,
            "ollama_moved_pins": ollama_moved_pins,
            "ollama_pins": ollama_pins,
            "ollama_golden_problems": ollama_golden_problems,
            "ollama_golden_cases": ollama_golden_cases,
            "ollama_golden_metrics": ollama_golden_metrics,
            "ollama_rollback_name": ollama_rollback_name,
            "ollama_bundle_manifest": ollama_bundle_manifest,
            "ollama_bundle_blob": ollama_bundle_blob,
            "ollama_artifacts": ollama_artifacts,
            "ollama_release_archive": ollama_release_archive,
        }
