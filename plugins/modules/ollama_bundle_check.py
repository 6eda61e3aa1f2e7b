#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: an air-gap bundle checked against its lock, and the lock against the inventory's pins."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ollama_bundle_check
short_description: Check an air-gap bundle against its lock file and the inventory's pins
description:
  - The bundle is the C(artifacts/) directory that C(scripts/ollama_bundle.py build) makes on a connected machine
    (C(ollama/<version>/) with the release archive and C(sha256sum.txt), C(models/) in OLLAMA_MODELS layout, and the lock
    C(bundle.lock.json)).
  - Every file is compared with the lock (a missing, extra, resized or changed file fails, naming it); the lock with itself
    (each manifest hashes to its pin, each blob to its name with the size its manifest gives, each archive to its pin and to
    C(sha256sum.txt)); and the lock's pins with the inventory's (I(models), I(ollama_version), I(release_pins)).
  - Meant to run on the controller (C(delegate_to) localhost, C(run_once)) before a role copies anything from the bundle,
    so a corrupt or tampered bundle never reaches a host. It never changes the bundle.
  - Hashes are remembered in C(<path>/.bundle-hashes.json), keyed by each file's size, mtime, ctime, inode and device, so
    a multi-GB bundle is read once, not on every run; any write to a file, a copy or a C(touch) that restores the mtime makes
    it be read again. That cache file is also written in check mode (it changes nothing a host uses). I(hash_cache=false)
    reads every file.
  - Read-only for the hosts, so it runs in check mode.
options:
  path:
    description: The bundle's directory (a site's C(<inventory>/artifacts)).
    type: path
    required: true
  lock:
    description: The lock file; default C(<path>/bundle.lock.json).
    type: path
  models:
    description: The inventory's model pins, C({name, digest}) each (e.g. C(ollama_models_list); other keys are ignored); the
      lock must pin exactly these. Omitted, the models' pins are not compared (their files still are).
    type: list
    elements: dict
  ollama_version:
    description: The inventory's C(ollama_version); the lock must hold this release. Omitted or empty, the release's pins are
      not compared (its files still are).
    type: str
  release_pins:
    description: The inventory's C(ollama_release_pins) (C({version, {arch, sha256}})); each archive of the lock must be pinned
      there with the sha256 the lock records.
    type: dict
    default: {}
  covers:
    description: Paths the caller copies from (release directories, model bundles); each must lie inside I(path), else the
      check fails (what it copies would not be what was checked).
    type: list
    elements: path
    default: []
  hash_cache:
    description: Remember hashes between runs (see above).
    type: bool
    default: true
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Check the site's bundle before anything is copied from it
  ollama_fleet.fleet.ollama_bundle_check:
    path: "{{ inventory_dir }}/artifacts"
    models: "{{ ollama_models_list }}"
    ollama_version: "{{ ollama_version }}"
    release_pins: "{{ ollama_release_pins }}"
  delegate_to: localhost
  run_once: true
  become: false
"""

RETURN = r"""
problems:
  description: One line per difference (empty when the bundle matches), each naming the file or the pin.
  type: list
  elements: str
  returned: always
files:
  description: Files that matched the lock.
  type: int
  returned: always
bytes:
  description: Their total size.
  type: int
  returned: always
hashed_bytes:
  description: Bytes read and hashed by this run (0 when every file was unchanged since its last check).
  type: int
  returned: always
cached_files:
  description: Files whose hash came from the cache.
  type: int
  returned: always
lock:
  description: The lock file read.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ollama_fleet.fleet.plugins.module_utils import bundle, digests


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            lock=dict(type="path"),
            models=dict(type="list", elements="dict"),
            ollama_version=dict(type="str"),
            release_pins=dict(type="dict", default={}),
            covers=dict(type="list", elements="path", default=[]),
            hash_cache=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    models = params["models"]
    if models is not None:
        bad = [str(m.get("name")) for m in models if not m.get("name") or not digests.is_digest(str(m.get("digest", "")).lower())]
        if bad:
            module.fail_json(msg="models: each item needs a name and a sha256 digest: %s" % ", ".join(bad))
        models = [{"name": str(m["name"]), "digest": str(m["digest"])} for m in models]
    result = bundle.check(params["path"], params["lock"], models=models, version=params["ollama_version"] or None,
                          release_pins=params["release_pins"], cache=params["hash_cache"], covers=params["covers"])
    if result["problems"]:
        module.fail_json(msg="The bundle %s does not match its lock or the inventory's pins, so nothing was copied from it: %s. "
                             "Build it again on the connected machine (scripts/ollama_bundle.py build) or bring the inventory's pins "
                             "in line." % (params["path"], "; ".join(result["problems"])), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
