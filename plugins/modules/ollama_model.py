#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ensure one model at its pinned manifest digest, pulled from a registry or the site mirror
through the node's own Ollama API: staged, verified against the pin, rolled back on a mismatch.
Stdlib only, Python 3.6+, runs on the node."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ollama_model
short_description: Ensure an Ollama model at its pinned manifest digest, or leave the installed one
description:
  - Compares the digest C(/api/tags) lists for O(name) with O(digest). Equal, nothing is fetched
    and the result is unchanged.
  - Otherwise it pulls the model and checks the pulled manifest's digest against the pin before
    O(name) may serve it. Ollama cannot pull by digest, so a tag that moved upstream is caught here.
  - O(source=registry) pulls O(name) itself. The installed manifest is first copied to a backup
    name (a manifest copy, no blob is duplicated), so its layers stay referenced whatever the pull
    brings; a digest other than the pin puts the backup back byte for byte, or removes the name
    when nothing was installed before, and the module fails. The backup name is always dropped.
  - O(source=mirror) pulls the mirror's name for the model (C(<mirror>/<namespace>/<model>:<tag>)),
    which leaves O(name) untouched until the digest matched, then copies it to O(name). The mirror
    name is always dropped again; its blobs stay, referenced by the copy.
  - In check mode nothing is pulled; the result says whether a run would install the pin.
options:
  api_url:
    description: Base URL of the node's Ollama API (C(http://127.0.0.1:11434)).
    type: str
    required: true
  name:
    description: The model's name as the site pins it (C(qwen3:4b-instruct-2507-q4_K_M)).
    type: str
    required: true
  digest:
    description: The pinned manifest digest, C(sha256:<64 hex>) or the bare hex.
    type: str
    required: true
  source:
    description: Where the model comes from.
    type: str
    choices: [registry, mirror]
    default: registry
  mirror:
    description: The site mirror as C(host:port); required with O(source=mirror).
    type: str
    default: ""
  insecure:
    description: Pull over plain HTTP (a site mirror without TLS).
    type: bool
    default: false
  timeout:
    description: Seconds the pull may take; other API calls take at most 60.
    type: int
    default: 3600
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Install the pinned base model from the site mirror
  ollama_fleet.fleet.ollama_model:
    api_url: http://127.0.0.1:11434
    name: qwen3:4b-instruct-2507-q4_K_M
    digest: sha256:fb0f78316b0f2f36fe6fbe3d12c16289baa3beaaf6f65264c22cc2ee57ec7e64
    source: mirror
    mirror: mirror.example.internal:8080
    insecure: true
"""

RETURN = r"""
name:
  description: The model's name as /api/tags lists it.
  returned: always
  type: str
previous:
  description: The digest (hex) installed before the run; empty when none was.
  returned: always
  type: str
digest:
  description: The digest (hex) installed after the run (the pin when it succeeded).
  returned: always
  type: str
pulled:
  description: The name that was pulled (O(name), or the mirror's name for it); empty when nothing was.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ollama_fleet.fleet.plugins.module_utils.digests import digest_hex, tags_digests
from ansible_collections.ollama_fleet.fleet.plugins.module_utils.names import backup_name, model_name, source_name
from ansible_collections.ollama_fleet.fleet.plugins.module_utils.ollama_api import OllamaApiError, call

API_TIMEOUT = 60


class PinError(Exception):
    pass


def installed(url, name):
    """The digest (hex) /api/tags lists for ``name``; '' when it is not installed."""
    return tags_digests(call(url, "/api/tags", timeout=API_TIMEOUT, method="GET")).get(model_name(name), "")


def drop(url, name):
    """Remove a name (its blobs stay while another manifest references them); absent is fine."""
    call(url, "/api/delete", {"model": name}, API_TIMEOUT, method="DELETE")


def pull(url, name, insecure, timeout):
    call(url, "/api/pull", {"model": name, "insecure": insecure, "stream": False}, timeout)


def from_registry(p, want, have):
    """Pull ``name`` over a backup of what is installed; put it back unless the pin came."""
    url, name = p["api_url"], p["name"]
    backup = backup_name(name)
    if have:
        call(url, "/api/copy", {"source": name, "destination": backup}, API_TIMEOUT)
    try:
        error = None
        try:
            pull(url, name, p["insecure"], p["timeout"])
        except OllamaApiError as exc:
            error = str(exc)
        got = installed(url, name)
        if got != want:
            if have:
                call(url, "/api/copy", {"source": backup, "destination": name}, API_TIMEOUT)
            elif got:
                drop(url, name)
            kept = ("the previously installed digest %s is still in place" % have) if have else "nothing was installed"
            if error:
                raise PinError("%s: the pull failed (%s); %s." % (name, error, kept))
            raise PinError("%s: the registry serves digest %s, the pin is %s. The tag has probably moved upstream; %s. "
                           "Update the pin only after validating the new weights." % (name, got, want, kept))
    finally:
        if have:
            drop(url, backup)


def from_mirror(p, want):
    """Pull the mirror's name, check it, then copy it to ``name``; the mirror name is dropped."""
    url, name = p["api_url"], p["name"]
    mirrored = source_name({"name": name, "source": "mirror", "mirror": p["mirror"]})
    try:
        pull(url, mirrored, p["insecure"], p["timeout"])
        got = installed(url, mirrored)
        if got != want:
            raise PinError("%s: the mirror serves digest %s, the pin is %s. %s was left as it was." % (mirrored, got, want, name))
        call(url, "/api/copy", {"source": mirrored, "destination": name}, API_TIMEOUT)
    finally:
        drop(url, mirrored)
    return mirrored


def main():
    module = AnsibleModule(
        argument_spec=dict(
            api_url=dict(type="str", required=True),
            name=dict(type="str", required=True),
            digest=dict(type="str", required=True),
            source=dict(type="str", choices=["registry", "mirror"], default="registry"),
            mirror=dict(type="str", default=""),
            insecure=dict(type="bool", default=False),
            timeout=dict(type="int", default=3600),
        ),
        required_if=[("source", "mirror", ("mirror",))],
        supports_check_mode=True,
    )
    p = module.params
    want = digest_hex(p["digest"])
    result = dict(changed=False, name=model_name(p["name"]), previous="", digest="", pulled="")
    try:
        have = installed(p["api_url"], p["name"])
    except OllamaApiError as exc:
        if module.check_mode:
            # Check mode before Ollama is installed: nothing answers yet, the pin would be installed.
            module.exit_json(changed=True, msg="Ollama does not answer yet (%s): %s would be installed" % (exc, p["name"]), **result)
        module.fail_json(msg=str(exc), **result)
    result.update(previous=have, digest=have)
    if have == want:
        module.exit_json(**result)
    result.update(changed=True, diff=dict(before="%s@%s\n" % (result["name"], have or "none"), after="%s@%s\n" % (result["name"], want)))
    if module.check_mode:
        module.exit_json(**result)
    try:
        if p["source"] == "mirror":
            result["pulled"] = from_mirror(p, want)
        else:
            result["pulled"] = p["name"]
            from_registry(p, want, have)
        result["digest"] = installed(p["api_url"], p["name"])
    except (PinError, OllamaApiError) as exc:
        try:
            result["digest"] = installed(p["api_url"], p["name"])
        except OllamaApiError:
            pass
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
