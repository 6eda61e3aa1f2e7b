# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A site's air-gap bundle: its layout, its lock file and the check of both, the one definition.

The layout, under ``<inventory>/artifacts/`` (what the site mirror and the ``bundle`` model
source read)::

    ollama/<version>/<archive>           the release archive(s) of ollama_version
    ollama/<version>/sha256sum.txt       the release's published sums
    models/manifests/<host>/<ns>/<model>/<tag>   OLLAMA_MODELS layout, one manifest per pin
    models/blobs/sha256-<hex>            every layer and config the manifests list
    bundle.lock.json                     the lock (below)
    .bundle-hashes.json                  a hash cache; not part of the bundle

The lock (JSON) records when and from which inventory the bundle was made, the pins it was made
from (``ollama_version``, each archive's sha256 per architecture and whether the inventory pinned
it, each model's name and manifest digest) and every file: its path, size, sha256 and the URL it
came from. ``check`` compares every file with the lock, the lock with itself (manifests hash to
the pins, blobs to their names with the manifests' sizes, archives to the release pins and to
sha256sum.txt) and with the inventory's pins; each problem names the file or the pin.

Hashes are cached in ``.bundle-hashes.json`` keyed by the file's path, size, mtime, ctime, inode
and device: an unchanged file is not read again, and any write, a copy to another directory or
a ``touch`` that restores the mtime (the ctime moves) makes it be read again.

Stdlib only, no Ansible import: used by the module ollama_bundle_check and scripts/ollama_bundle.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import json
import os
import re

try:
    from ansible_collections.ollama_fleet.fleet.plugins.module_utils import digests, names, registry
except ImportError:  # loaded by path beside the other files (scripts/ollama_bundle.py)
    import digests  # pylint: disable=import-error
    import names  # pylint: disable=import-error
    import registry  # pylint: disable=import-error

LOCK_NAME = "bundle.lock.json"
CACHE_NAME = ".bundle-hashes.json"
LOCK_FORMAT = "ollama-fleet-bundle/1"
PARTIAL_SUFFIX = "-partial"
RELEASE_DIR = "ollama"
MODELS_DIR = "models"
DEFAULT_ARCHES = ("amd64",)
ZST_SINCE = (0, 14, 0)


# -- layout -------------------------------------------------------------------------------------

def release_archive(version, arch):
    """The archive Ollama publishes for ``version`` on ``arch``: ``ollama-linux-<arch>.tar.zst``
    from 0.14.0 on, ``.tgz`` before."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", str(version).split("-")[0])[:3])
    return "ollama-linux-%s.%s" % (arch, "tar.zst" if numbers >= ZST_SINCE else "tgz")


def release_dir(version):
    """``ollama/<version>``: a release's directory in a bundle (relative)."""
    return "%s/%s" % (RELEASE_DIR, version)


def store_manifest(name):
    """``manifests/<host>/<ns>/<model>/<tag>``: a model's manifest in an OLLAMA_MODELS directory."""
    return "manifests/" + names.manifest_path(name)


def store_blob(digest):
    """``blobs/sha256-<hex>``: a blob in an OLLAMA_MODELS directory."""
    return "blobs/" + digests.blob_filename(digest)


def manifest_file(name):
    """``models/manifests/<host>/<ns>/<model>/<tag>``: a model's manifest in a bundle (relative)."""
    return "%s/%s" % (MODELS_DIR, store_manifest(name))


def blob_file(digest):
    """``models/blobs/sha256-<hex>``: a blob in a bundle (relative)."""
    return "%s/%s" % (MODELS_DIR, store_blob(digest))


def artifacts_path(root, what, version=None):
    """Where a site's bundle ``root`` holds ``what``: ``release`` (of ``version``), ``models`` or ``lock``."""
    relative = {"release": release_dir(version) if version else None, "models": MODELS_DIR, "lock": LOCK_NAME}.get(what)
    if relative is None:
        raise ValueError("artifacts_path: %r (with version %r) is not release (with a version), models or lock" % (what, version))
    return "%s/%s" % (str(root).rstrip("/"), relative)


def join(root, relative):
    """``root/relative`` with the bundle's ``/`` separators."""
    return os.path.join(str(root), *str(relative).split("/"))


def within(root, path):
    """True when ``path`` is ``root`` or below it (both made absolute, links resolved)."""
    root, path = os.path.realpath(str(root)), os.path.realpath(str(path))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# -- hashes ---------------------------------------------------------------------------------------

class HashCache:
    """sha256 of the bundle's files, each read once while the file stays as it was (see module doc)."""

    def __init__(self, root, enabled=True):
        self.root = str(root)
        self.path = os.path.join(self.root, CACHE_NAME)
        self.enabled = enabled
        self.entries = {}
        self.hashed_bytes = 0
        self.cached_files = 0
        self.dirty = False
        if enabled and os.path.isfile(self.path):
            try:
                with open(self.path) as handle:
                    loaded = json.load(handle)
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.entries = {}

    @staticmethod
    def _key(stat):
        return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]

    def sha256(self, relative):
        """The hex sha256 of the bundle file ``relative``."""
        full = join(self.root, relative)
        stat = os.stat(full)
        entry = self.entries.get(relative)
        if self.enabled and isinstance(entry, dict) and entry.get("key") == self._key(stat):
            self.cached_files += 1
            return entry["sha256"]
        value = digests.sha256_file(full)
        self.hashed_bytes += stat.st_size
        self.record(relative, value)
        return value

    def record(self, relative, sha256):
        """Remember ``sha256`` for the file as it is now (e.g. hashed while it was downloaded)."""
        if self.enabled:
            self.entries[relative] = {"key": self._key(os.stat(join(self.root, relative))), "sha256": sha256}
            self.dirty = True

    def save(self):
        if not (self.enabled and self.dirty):
            return
        known = {k: v for k, v in self.entries.items() if os.path.isfile(join(self.root, k))}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(known, handle, sort_keys=True)
        os.replace(tmp, self.path)
        self.dirty = False


# -- the lock -------------------------------------------------------------------------------------

def read_lock(path):
    """The lock at ``path`` (dict); ValueError naming the file when it is not a lock."""
    try:
        with open(str(path)) as handle:
            lock = json.load(handle)
    except OSError as exc:
        raise ValueError("%s: cannot be read (%s)" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise ValueError("%s: not JSON (%s)" % (path, exc))
    if not isinstance(lock, dict) or lock.get("format") != LOCK_FORMAT or not isinstance(lock.get("files"), dict):
        raise ValueError("%s: not an ollama-fleet bundle lock (format %s)" % (path, LOCK_FORMAT))
    return lock


def write_lock(path, lock):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(lock, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, str(path))


def pin_line(version, archives):
    """The ollama_release_pins entry a site adds for ``version``: ``{arch: sha256 hex}`` given."""
    return '  "%s":\n%s' % (version, "".join("    %s: sha256:%s\n" % (arch, sha) for arch, sha in sorted(archives.items())))


def expected_files(lock_pins, read_manifest):
    """``{path: {sha256, size?}}`` every file the pins call for, from the pins alone and the
    manifests (``read_manifest(relative)`` gives a manifest's bytes, None when absent); and
    the problems met on the way (a manifest that does not parse)."""
    want, problems = {}, []
    release = lock_pins.get("release") or {}
    version = release.get("version")
    for arch, entry in sorted((release.get("archives") or {}).items()):
        want["%s/%s" % (release_dir(version), entry.get("file") or release_archive(version, arch))] = {
            "sha256": digests.digest_hex(entry.get("sha256"))}
    if version:
        want["%s/sha256sum.txt" % release_dir(version)] = {}
    for model in lock_pins.get("models") or []:
        relative = manifest_file(model["name"])
        want[relative] = {"sha256": digests.digest_hex(model["digest"])}
        raw = read_manifest(relative)
        if raw is None:
            continue
        try:
            layers = registry.manifest_layers(json.loads(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, AttributeError) as exc:
            problems.append("%s (%s): not a manifest (%s)" % (relative, model["name"], exc))
            continue
        for layer in layers:
            want[blob_file(layer["digest"])] = {"sha256": digests.digest_hex(layer["digest"]), "size": layer["size"]}
    return want, problems


def _pins_problems(lock_pins, models, version, release_pins):
    """The differences between the lock's pins and the inventory's."""
    problems = []
    if models is not None:
        locked = {names.model_name(m["name"]): digests.digest_hex(m["digest"]) for m in lock_pins.get("models") or []}
        pinned = {names.model_name(m["name"]): digests.digest_hex(m["digest"]) for m in models}
        for name in sorted(set(locked) | set(pinned)):
            if name not in locked:
                problems.append("the inventory pins %s@sha256:%s, the lock has no such model" % (name, pinned[name]))
            elif name not in pinned:
                problems.append("the lock holds %s@sha256:%s, which the inventory does not pin" % (name, locked[name]))
            elif locked[name] != pinned[name]:
                problems.append("the lock pins %s at sha256:%s, the inventory at sha256:%s" % (name, locked[name], pinned[name]))
    if version:
        release = lock_pins.get("release") or {}
        if str(release.get("version")) != str(version):
            problems.append("the lock holds Ollama %s, the inventory's ollama_version is %s" % (release.get("version"), version))
        else:
            for arch, entry in sorted((release.get("archives") or {}).items()):
                pin = digests.release_pin(release_pins, version, arch)
                locked = digests.digest_hex(entry.get("sha256"))
                if not pin:
                    problems.append("ollama_release_pins has no sha256 for Ollama %s on %s; the lock records upstream's "
                                    "sha256:%s, checked against sha256sum.txt where it was downloaded. If you trust it, add to "
                                    "ollama_release_pins:\n%s" % (version, arch, locked, pin_line(version, {arch: locked})))
                elif pin != locked:
                    problems.append("the lock pins Ollama %s on %s at sha256:%s, ollama_release_pins at sha256:%s"
                                    % (version, arch, locked, pin))
    return problems


def check(root, lock_path=None, models=None, version=None, release_pins=None, cache=True, covers=()):
    """Check the bundle under ``root`` (see the module's docstring). ``models`` ([{name, digest}]),
    ``version`` and ``release_pins`` are the inventory's pins (None / '' skips that part);
    ``covers`` are paths that must lie inside ``root`` (the directories a role copies from).
    Returns ``{problems: [...], files, bytes, hashed_bytes, cached_files}``."""
    root = str(root)
    lock_path = str(lock_path or os.path.join(root, LOCK_NAME))
    result = {"problems": [], "files": 0, "bytes": 0, "hashed_bytes": 0, "cached_files": 0, "lock": lock_path}
    problems = result["problems"]
    for path in covers or ():
        if not within(root, path):
            problems.append("%s is outside the checked bundle %s" % (path, root))
    try:
        lock = read_lock(lock_path)
    except ValueError as exc:
        problems.append(str(exc))
        return result
    pins = lock.get("pins") or {}
    problems.extend(_pins_problems(pins, models, version, release_pins or {}))

    hashes = HashCache(root, enabled=cache)
    files = lock["files"]
    on_disk = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            relative = os.path.relpath(os.path.join(dirpath, filename), root).replace(os.sep, "/")
            if relative in (LOCK_NAME, CACHE_NAME, CACHE_NAME + ".tmp"):
                continue
            on_disk.add(relative)
    for relative in sorted(on_disk - set(files)):
        problems.append("%s: extra file, not in the lock" % relative)
    verified = {}
    for relative in sorted(files):
        entry = files[relative]
        if relative not in on_disk:
            problems.append("%s: missing (the lock lists %s bytes, sha256:%s)" % (relative, entry.get("size"), entry.get("sha256")))
            continue
        size = os.path.getsize(join(root, relative))
        if size != entry.get("size"):
            problems.append("%s: %d bytes, the lock says %s" % (relative, size, entry.get("size")))
            continue
        got = hashes.sha256(relative)
        if got != digests.digest_hex(entry.get("sha256")):
            problems.append("%s: sha256:%s, the lock says sha256:%s" % (relative, got, entry.get("sha256")))
            continue
        verified[relative] = got
        result["files"] += 1
        result["bytes"] += size

    def read_manifest(relative):
        if relative not in verified:
            return None
        with open(join(root, relative), "rb") as handle:
            return handle.read()

    want, manifest_problems = expected_files(pins, read_manifest)
    problems.extend(manifest_problems)
    for relative in sorted(want):
        entry = files.get(relative)
        if entry is None:
            problems.append("%s: called for by the pins, not in the lock" % relative)
            continue
        if want[relative].get("sha256") and digests.digest_hex(entry.get("sha256")) != want[relative]["sha256"]:
            problems.append("%s: the lock says sha256:%s, the pins sha256:%s" % (relative, entry.get("sha256"), want[relative]["sha256"]))
        if "size" in want[relative] and entry.get("size") != want[relative]["size"]:
            problems.append("%s: the lock says %s bytes, its manifest %s" % (relative, entry.get("size"), want[relative]["size"]))
    for relative in sorted(set(files) - set(want)):
        problems.append("%s: in the lock but called for by no pin" % relative)
    release = pins.get("release") or {}
    sums = "%s/sha256sum.txt" % release_dir(release.get("version"))
    if sums in verified:
        with open(join(root, sums)) as handle:
            text = handle.read()
        for arch, entry in sorted((release.get("archives") or {}).items()):
            archive = entry.get("file") or release_archive(release.get("version"), arch)
            published = digests.sha256sum_lookup(text, archive)
            if published != digests.digest_hex(entry.get("sha256")):
                problems.append("%s gives %s sha256:%s, the lock sha256:%s" % (sums, archive, published or "(no line)", entry.get("sha256")))
    hashes.save()
    result["hashed_bytes"], result["cached_files"] = hashes.hashed_bytes, hashes.cached_files
    return result
