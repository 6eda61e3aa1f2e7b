# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests and sha256 files: the one definition of each form and of the pin rule.

- a model pin is the sha256 of its manifest's bytes, written ``sha256:<64 hex>`` or ``<64 hex>``;
  /api/tags reports the bare hex;
- a blob's file name in a store is ``sha256-<hex>``, and its content hashes to that hex;
- a release's ``sha256sum.txt`` has ``<hex>  [*][./]<file>`` lines.

Stdlib only, no Ansible import: also loaded by path on a node (roles/ollama_metrics).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import re

try:
    from ansible_collections.ollama_fleet.fleet.plugins.module_utils.names import model_name
except ImportError:  # loaded by path beside names.py (roles/ollama_metrics on a node)
    from names import model_name  # pylint: disable=import-error

DIGEST_RE = re.compile(r"^(sha256:)?([0-9a-f]{64})$")
CHUNK = 1 << 20


def is_digest(value):
    """True for ``sha256:<64 lowercase hex>`` or the bare 64 hex."""
    return bool(DIGEST_RE.match(str(value if value is not None else "").strip()))


def digest_hex(value):
    """The 64-hex form of a digest (``sha256:`` dropped, case folded); anything else unchanged."""
    text = str(value if value is not None else "").strip()
    match = DIGEST_RE.match(text.lower())
    return match.group(2) if match else text


def digest_ref(value):
    """The ``sha256:<hex>`` form, as manifests write layer digests."""
    return "sha256:" + digest_hex(value)


def blob_filename(digest):
    """``sha256-<hex>``: a blob's file name in an OLLAMA_MODELS store or on the mirror."""
    return "sha256-" + digest_hex(digest)


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk=CHUNK):
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256sum_lookup(text, filename):
    """The lowercase sha256 that the text of a ``sha256sum.txt`` gives ``filename``; '' if none."""
    pattern = re.compile(r"^([0-9a-fA-F]{64}) +\*?(\./)?" + re.escape(str(filename)) + r" *$")
    for line in str(text or "").splitlines():
        match = pattern.match(line.rstrip("\r"))
        if match:
            return match.group(1).lower()
    return ""


RELEASE_ARCHIVES = {"amd64": ("ollama-linux-amd64.tar.zst", "ollama-linux-amd64.tgz"),
                    "arm64": ("ollama-linux-arm64.tar.zst", "ollama-linux-arm64.tgz")}


def release_pins(text):
    """``{arch: sha256 hex}`` of the Linux archives a release's ``sha256sum.txt`` lists (the
    ``tar.zst`` one where a release has both): what a site writes into ollama_release_pins for a
    version, from a sha256sum.txt it trusts (e.g. checked on the connected machine)."""
    pins = {}
    for arch, archives in RELEASE_ARCHIVES.items():
        for archive in archives:
            found = sha256sum_lookup(text, archive)
            if found:
                pins[arch] = found
                break
    return pins


def release_pin(pins, version, arch):
    """The pinned sha256 hex of ``version``'s archive for ``arch`` in ollama_release_pins
    (``{version: {arch: digest}}``); '' when the site pinned none."""
    entry = (pins or {}).get(str(version)) or {}
    value = entry.get(str(arch), "") if isinstance(entry, dict) else ""
    return digest_hex(value) if value and is_digest(str(value).lower()) else ""


def tags_digests(body):
    """{name: digest hex} of an /api/tags or /api/ps body; {} for a missing body (nothing installed)."""
    if not isinstance(body, dict):
        return {}
    out = {}
    for model in body.get("models") or []:
        if isinstance(model, dict) and model.get("name"):
            out[model["name"]] = digest_hex(model.get("digest"))
    return out


def pin_ref(pin):
    """``name:tag@hex``: how a pin is named in messages and compared with what a node lists."""
    return "%s@%s" % (model_name(pin["name"]), digest_hex(pin["digest"]))


def unmet_pins(pins, body, moved_only=False):
    """``name@digest`` of each pin ({name, digest}) the /api/tags body does not list at its digest;
    with ``moved_only``, only of those it lists at another digest (a pin that changed)."""
    installed = tags_digests(body)
    unmet = []
    for pin in pins or []:
        have = installed.get(model_name(pin["name"]))
        if have != digest_hex(pin["digest"]) and (have or not moved_only):
            unmet.append(pin_ref(pin))
    return unmet
