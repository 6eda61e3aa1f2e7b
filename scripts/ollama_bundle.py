#!/usr/bin/env python3
"""Air-gap bundle of a site's pinned Ollama release and models: built from upstream on a connected
machine, checked on the air-gapped side.

    scripts/ollama_bundle.py build  -i inventories/mysite [--out DIR] [--arch amd64 ...] [--pack FILE.tar]
    scripts/ollama_bundle.py check  -i inventories/mysite [--artifacts DIR]
    scripts/ollama_bundle.py unpack -i inventories/mysite FILE.tar

build reads the inventory's pins (ollama_version, ollama_release_pins, ollama_models_list: names
and digests, as the first ollama_nodes host sees them, through ansible-playbook on localhost;
nothing connects to a host) and writes <inventory>/artifacts/: the release archive and its
sha256sum.txt, the models in OLLAMA_MODELS layout, and bundle.lock.json. Every manifest is fetched
(Ollama's Accept header) and must hash to its pin before any blob is fetched; blobs are fetched as
Ollama fetches them (the registry's redirect to its blob store, Range requests), hashed while they
arrive, and resumed from their partial file. What is present and correct is not fetched again;
what the pins no longer call for is removed. A release without a pin is downloaded, checked
against its sha256sum.txt and reported with the line to add to the inventory (exit status 3).

check compares every file with the lock and the lock with the inventory's pins (exit status 1 and
one line per problem when they differ); unpack checks FILE.tar against FILE.tar.sha256, extracts
its artifacts/ into the inventory and runs check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "plugins", "module_utils"))

import bundle  # noqa: E402  pylint: disable=wrong-import-position,import-error
import digests  # noqa: E402  pylint: disable=wrong-import-position,import-error
import names  # noqa: E402  pylint: disable=wrong-import-position,import-error
import registry  # noqa: E402  pylint: disable=wrong-import-position,import-error

DEFAULT_RELEASE_URL = "https://github.com/ollama/ollama/releases/download"
EXIT_PROBLEMS, EXIT_UNPINNED = 1, 3

# Templated on the controller in the first ollama_nodes host's context and written to a local
# file: names and digests only (a model's source and mirror name other hosts and stay untouched).
PINS_PLAYBOOK = """---
- name: Read the site's pins
  hosts: "ollama_nodes[0]"
  gather_facts: false
  tasks:
    - name: Write the pins to the controller
      ansible.builtin.copy:
        dest: "{{ bundle_pins_out }}"
        mode: "0600"
        content: >-
          {{ {'version': ollama_version | string,
              'release_pins': ollama_release_pins | default({}),
              'release_url': ollama_release_url | default(''),
              'models': ollama_models_list | map(attribute='name') | zip(ollama_models_list | map(attribute='digest')) | list,
              'inventory_dir': inventory_dir} | to_json }}
      delegate_to: localhost
      become: false
"""


class Failure(Exception):
    """What stops the command; its text is printed."""


def say(text: str) -> None:
    print(text, flush=True)


def ansible_bin(name: str) -> str:
    """The Ansible command beside this Python (a virtualenv), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.access(here, os.X_OK) else (shutil.which(name) or name)


def read_pins(inventory: str, ansible_args: list[str]) -> dict:
    """The inventory's pins, templated by Ansible as the roles see them (see PINS_PLAYBOOK)."""
    with tempfile.TemporaryDirectory(prefix="ollama-bundle-") as work:
        playbook, out = os.path.join(work, "pins.yml"), os.path.join(work, "pins.json")
        with open(playbook, "w") as handle:
            handle.write(PINS_PLAYBOOK)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), ANSIBLE_RETRY_FILES_ENABLED="0")
        run = subprocess.run([ansible_bin("ansible-playbook"), "-i", inventory, playbook, "-e", "bundle_pins_out=" + out,
                              *ansible_args], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        if run.returncode != 0 or not os.path.isfile(out):
            raise Failure("reading the pins of %s failed (ansible-playbook rc %d):\n%s%s"
                          % (inventory, run.returncode, run.stdout[-3000:], run.stderr[-2000:]))
        with open(out) as handle:
            pins = json.load(handle)
    pins["models"] = [{"name": str(n), "digest": str(d)} for n, d in pins["models"]]
    bad = [m["name"] for m in pins["models"] if not digests.is_digest(str(m["digest"]).lower())]
    if bad:
        raise Failure("ollama_models_list: %s has no sha256 digest: every model is pinned" % ", ".join(bad))
    return pins


class Progress:
    """bytes, rate and ETA on one refreshed line while a file downloads, on a terminal only
    (nothing when stderr is not a tty or CI is set): CI logs keep one line per file."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self.start = self.last = time.monotonic()
        self.first = None

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        rate = (done - self.first) / max(now - self.start, 1e-6)
        eta = "--:--" if not total or rate <= 0 else "%d:%02d" % divmod(int((total - done) / rate), 60)
        shown = "%s / %s" % (mib(done), mib(total)) if total else mib(done)
        sys.stderr.write("\r  %s  %s  %s/s  ETA %s\033[K" % (self.label, shown, mib(rate), eta))
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def mib(n: float | None) -> str:
    return "?" if n is None else "%.1f MiB" % (n / 1048576.0)


def progress_wanted() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


class Builder:
    """One build of <out>: what the pins call for, fetched only where absent or wrong."""

    def __init__(self, args: argparse.Namespace, pins: dict) -> None:
        self.args, self.pins = args, pins
        self.out = os.path.abspath(args.out or os.path.join(pins["inventory_dir"], "artifacts"))
        self.hashes = bundle.HashCache(self.out)
        self.files: dict[str, dict] = {}
        self.fetched = 0
        self.kept = 0
        self.progress = progress_wanted() if args.progress is None else args.progress
        self.registries = dict(item.split("=", 1) for item in args.registry or [])
        self.release_url = (args.release_url or pins.get("release_url") or DEFAULT_RELEASE_URL).rstrip("/")

    # -- helpers
    def path(self, relative: str) -> str:
        return bundle.join(self.out, relative)

    def registry_url(self, url: str) -> str:
        """``url`` with a registry's scheme://host replaced by its --registry override."""
        for host, base in self.registries.items():
            for scheme in ("https://", "http://"):
                if url.startswith(scheme + host + "/"):
                    return base.rstrip("/") + url[len(scheme + host):]
        return url

    def present(self, relative: str, sha256: str, size: int | None = None) -> bool:
        """True when the file is there with this sha256 (and size): kept, nothing fetched."""
        full = self.path(relative)
        if not os.path.isfile(full) or (size is not None and os.path.getsize(full) != size):
            return False
        return self.hashes.sha256(relative) == sha256

    def keep(self, relative: str, sha256: str, source: str) -> None:
        self.files[relative] = {"size": os.path.getsize(self.path(relative)), "sha256": sha256, "source": source}

    def fetch(self, relative: str, url: str, size: int | None = None) -> dict:
        """Download url into relative's partial file (resumed), return {sha256, size, fetched}."""
        full = self.path(relative)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        partial = full + bundle.PARTIAL_SUFFIX
        resumed = os.path.getsize(partial) if os.path.exists(partial) else 0
        bar = Progress(relative.rsplit("/", 1)[-1][:24], self.progress)
        started = time.monotonic()
        try:
            got = registry.download(url, partial, size=size, progress=bar, timeout=self.args.timeout)
        finally:
            bar.end()
        self.fetched += got["fetched"]
        seconds = time.monotonic() - started
        say("  fetched %s: %d bytes in %.1f s%s" % (relative, got["fetched"], seconds,
                                                     " (resumed at byte %d)" % resumed if resumed else ""))
        return got

    def install(self, relative: str, sha256: str, source: str) -> None:
        """Move a checked partial file to its name and remember its hash."""
        os.replace(self.path(relative) + bundle.PARTIAL_SUFFIX, self.path(relative))
        self.hashes.record(relative, sha256)
        self.keep(relative, sha256, source)

    # -- the steps
    def manifests(self) -> dict:
        """Every pinned manifest, fetched and checked before any blob moves: {name: bytes}."""
        fetched, refused = {}, []
        for model in self.pins["models"]:
            name, want = model["name"], digests.digest_hex(model["digest"])
            relative = bundle.manifest_file(name)
            if self.present(relative, want):
                with open(self.path(relative), "rb") as handle:
                    fetched[name] = handle.read()
                continue
            url = self.registry_url(names.manifest_url(name))
            raw = registry.fetch_manifest(url, timeout=self.args.timeout)
            self.fetched += len(raw)
            got = digests.sha256_bytes(raw)
            if got != want:
                refused.append("%s: the registry's manifest (%s) has sha256:%s, the pin is sha256:%s: the tag moved upstream. "
                               "Pin the new digest only after checking it" % (name, url, got, want))
            fetched[name] = raw
        if refused:
            raise Failure("refused, no blob was fetched:\n  " + "\n  ".join(refused))
        return fetched

    def blobs(self, manifests: dict) -> None:
        for model in self.pins["models"]:
            name = model["name"]
            for layer in registry.manifest_layers(json.loads(manifests[name].decode("utf-8"))):
                relative = bundle.blob_file(layer["digest"])
                want = digests.digest_hex(layer["digest"])
                source = self.registry_url(names.blob_url(name, layer["digest"]))
                if relative in self.files:
                    continue
                if self.present(relative, want, layer["size"]):
                    self.kept += 1
                    self.keep(relative, want, source)
                    continue
                if os.path.exists(self.path(relative)):
                    os.remove(self.path(relative))  # wrong size or bytes: fetched again
                direct = registry.direct_url(source, timeout=self.args.timeout)
                got = self.fetch(relative, direct, layer["size"])
                if got["sha256"] != want or got["size"] != layer["size"]:
                    os.remove(self.path(relative) + bundle.PARTIAL_SUFFIX)
                    raise Failure("%s: blob %s arrived with sha256:%s (%d bytes), its name says %s (%d bytes); removed"
                                  % (name, relative, got["sha256"], got["size"], want, layer["size"]))
                self.install(relative, want, source)

    def write_manifests(self, manifests: dict) -> None:
        """Manifests last, byte for byte, once every blob they list is in place."""
        for model in self.pins["models"]:
            name = model["name"]
            relative = bundle.manifest_file(name)
            want = digests.digest_hex(model["digest"])
            if not self.present(relative, want):
                os.makedirs(os.path.dirname(self.path(relative)), exist_ok=True)
                with open(self.path(relative) + bundle.PARTIAL_SUFFIX, "wb") as handle:
                    handle.write(manifests[name])
                self.install(relative, want, self.registry_url(names.manifest_url(name)))
            else:
                self.kept += 1
                self.keep(relative, want, self.registry_url(names.manifest_url(name)))

    def release(self) -> dict:
        """The archives of ollama_version for each --arch and sha256sum.txt; {arch: {file, sha256, pinned}}."""
        version = self.pins["version"]
        base = "%s/v%s" % (self.release_url, version)
        sums_rel = "%s/sha256sum.txt" % bundle.release_dir(version)
        out, unpinned = {}, {}
        sums_text = None
        for arch in self.args.arch or bundle.DEFAULT_ARCHES:
            archive = bundle.release_archive(version, arch)
            relative = "%s/%s" % (bundle.release_dir(version), archive)
            pin = digests.release_pin(self.pins["release_pins"], version, arch)
            url = "%s/%s" % (base, archive)
            if pin and self.present(relative, pin):
                self.kept += 1
                self.keep(relative, pin, url)
                out[arch] = {"file": archive, "sha256": pin, "pinned": True}
                continue
            if sums_text is None:
                sums_text = self.sums(sums_rel, base)
            published = digests.sha256sum_lookup(sums_text, archive)
            if pin and published and published != pin:
                raise Failure("%s/sha256sum.txt gives %s sha256:%s, ollama_release_pins sha256:%s: nothing of it was fetched"
                              % (base, archive, published, pin))
            if not pin and published and self.present(relative, published):
                got = {"sha256": published}
                self.kept += 1
            else:
                if os.path.exists(self.path(relative)):
                    os.remove(self.path(relative))
                got = self.fetch(relative, url)
                expected = pin or published
                if got["sha256"] != expected:
                    os.remove(self.path(relative) + bundle.PARTIAL_SUFFIX)
                    raise Failure("%s arrived with sha256:%s, %s says sha256:%s; removed"
                                  % (url, got["sha256"], "ollama_release_pins" if pin else "its sha256sum.txt", expected or "nothing"))
                self.install(relative, got["sha256"], url)
            self.keep(relative, got["sha256"], url)
            out[arch] = {"file": archive, "sha256": got["sha256"], "pinned": bool(pin)}
            if not pin:
                unpinned[arch] = got["sha256"]
        if sums_text is None:
            sums_text = self.sums(sums_rel, base)
        for arch, entry in out.items():
            published = digests.sha256sum_lookup(sums_text, entry["file"])
            if published != entry["sha256"]:
                raise Failure("%s gives %s sha256:%s, the pin is sha256:%s" % (sums_rel, entry["file"], published or "(no line)", entry["sha256"]))
        self.unpinned = unpinned
        return out

    def sums(self, relative: str, base: str) -> str:
        """sha256sum.txt of the release, kept when present (each archive's line is compared with
        its pin, so a stale file fails), else fetched."""
        if not os.path.isfile(self.path(relative)):
            got = self.fetch(relative, base + "/sha256sum.txt")
            self.install(relative, got["sha256"], base + "/sha256sum.txt")
        else:
            self.kept += 1
            self.keep(relative, self.hashes.sha256(relative), base + "/sha256sum.txt")
        with open(self.path(relative)) as handle:
            return handle.read()

    def prune(self, lock_pins: dict) -> list[str]:
        """Remove what the pins no longer call for under ollama/ and models/ (old pins, partial files)."""
        removed = []
        for top in (bundle.RELEASE_DIR, bundle.MODELS_DIR):
            for dirpath, _dirs, filenames in os.walk(self.path(top), topdown=False):
                for filename in filenames:
                    relative = os.path.relpath(os.path.join(dirpath, filename), self.out).replace(os.sep, "/")
                    if relative not in self.files:
                        os.remove(os.path.join(dirpath, filename))
                        removed.append(relative)
                if dirpath != self.path(top) and not os.listdir(dirpath):
                    os.rmdir(dirpath)
        return removed

    def run(self) -> int:
        os.makedirs(self.out, exist_ok=True)
        say("bundle: %s (Ollama %s, %d models) from the pins of %s" % (self.out, self.pins["version"], len(self.pins["models"]),
                                                                       self.args.inventory))
        manifests = self.manifests()
        archives = self.release()
        self.blobs(manifests)
        self.write_manifests(manifests)
        lock_pins = {"ollama_version": self.pins["version"],
                     "release": {"version": self.pins["version"], "archives": archives},
                     "models": [{"name": m["name"], "digest": "sha256:" + digests.digest_hex(m["digest"])} for m in self.pins["models"]]}
        by_file = {bundle.manifest_file(name): raw for name, raw in manifests.items()}
        want, _ = bundle.expected_files(lock_pins, by_file.get)
        missing = sorted(set(want) - set(self.files))
        if missing:
            raise Failure("internal: the pins call for files that were not made: %s" % ", ".join(missing))
        removed = self.prune(lock_pins)
        self.hashes.save()
        bundle.write_lock(bundle.join(self.out, bundle.LOCK_NAME), {
            "format": bundle.LOCK_FORMAT,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "inventory": os.path.abspath(self.args.inventory),
            "pins": lock_pins,
            "files": dict(sorted(self.files.items())),
        })
        total = sum(f["size"] for f in self.files.values())
        say("bundle: %d files, %d bytes; fetched %d bytes, kept %d files%s; lock %s"
            % (len(self.files), total, self.fetched, self.kept,
               (", removed %d no longer pinned (%s)" % (len(removed), ", ".join(removed[:5]) + (" ..." if len(removed) > 5 else "")))
               if removed else "", bundle.join(self.out, bundle.LOCK_NAME)))
        if self.args.pack:
            pack(self.out, self.args.pack)
        if self.unpinned:
            say("\nOllama %s has no pin in ollama_release_pins. Its archive was downloaded and matches the release's "
                "sha256sum.txt; it is not used until the inventory pins it. Check the sha256 where you trust it, then add under "
                "ollama_release_pins in group_vars/ollama_nodes.yml:\n%s" % (self.pins["version"],
                                                                               bundle.pin_line(self.pins["version"], self.unpinned)))
            return EXIT_UNPINNED
        return 0


def pack(out: str, archive: str) -> None:
    """One tar of artifacts/ (the lock included, the hash cache left out) and FILE.sha256 beside it."""
    archive = os.path.abspath(archive)
    with open(os.path.join(out, bundle.LOCK_NAME)) as handle:
        lock = json.load(handle)
    tmp = archive + bundle.PARTIAL_SUFFIX
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for relative in [bundle.LOCK_NAME] + sorted(lock["files"]):
            tar.add(bundle.join(out, relative), arcname="artifacts/" + relative, recursive=False)
    sha = digests.sha256_file(tmp)
    os.replace(tmp, archive)
    with open(archive + ".sha256", "w") as handle:
        handle.write("%s  %s\n" % (sha, os.path.basename(archive)))
    say("pack: %s (%d bytes), sha256 %s in %s.sha256" % (archive, os.path.getsize(archive), sha, archive))


def unpack(archive: str, inventory: str) -> str:
    """Check FILE.tar against FILE.tar.sha256 and extract its artifacts/ into the inventory."""
    with open(archive + ".sha256") as handle:
        want = digests.sha256sum_lookup(handle.read(), os.path.basename(archive))
    got = digests.sha256_file(archive)
    if not want or got != want:
        raise Failure("%s: sha256:%s, %s.sha256 says %s: not extracted" % (archive, got, archive, want or "nothing for it"))
    dest = os.path.abspath(inventory)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        bad = [m.name for m in members if not (m.isfile() or m.isdir()) or not m.name.startswith("artifacts/")
               or ".." in m.name.split("/") or m.name.startswith("/")]
        if bad:
            raise Failure("%s holds entries outside artifacts/ or that are not plain files: %s" % (archive, ", ".join(bad[:5])))
        for member in members:
            tar.extract(member, dest, set_attrs=False)
    say("unpack: %s checked (sha256 %s) and extracted into %s/artifacts" % (archive, got, dest))
    return os.path.join(dest, "artifacts")


def run_check(artifacts: str, pins: dict) -> int:
    models = [{"name": m["name"], "digest": m["digest"]} for m in pins["models"]]
    result = bundle.check(artifacts, models=models, version=pins["version"], release_pins=pins["release_pins"])
    if result["problems"]:
        say("check: %s does not match its lock or the inventory's pins; nothing may be installed from it:" % artifacts)
        for problem in result["problems"]:
            say("  " + problem.replace("\n", "\n    "))
        return EXIT_PROBLEMS
    say("check: %s matches its lock and the inventory's pins: %d files, %d bytes (%d bytes hashed, %d files unchanged since "
        "their last check)" % (artifacts, result["files"], result["bytes"], result["hashed_bytes"], result["cached_files"]))
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    doc = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=doc[0], epilog=doc[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--inventory", required=True, help="the site's inventory directory (its pins are read)")
        p.add_argument("--vault-password-file", action="append", default=[], help="passed to ansible-playbook")
        p.add_argument("--vault-id", action="append", default=[], help="passed to ansible-playbook")

    build = sub.add_parser("build", help="fetch the pinned release and models into <inventory>/artifacts and write the lock")
    common(build)
    build.add_argument("--out", help="artifacts directory (default <inventory>/artifacts)")
    build.add_argument("--arch", action="append", choices=sorted(digests.RELEASE_ARCHIVES),
                       help="release architectures to bundle (repeatable; default amd64, the mirror's default archive)")
    build.add_argument("--pack", metavar="FILE.tar", help="also write one tar of the bundle and FILE.tar.sha256")
    build.add_argument("--release-url", help="where releases are downloaded from (default: the inventory's "
                       "ollama_release_url, else %s)" % DEFAULT_RELEASE_URL)
    build.add_argument("--registry", action="append", metavar="HOST=URL",
                       help="fetch the models of registry HOST from URL (e.g. a pull-through proxy); repeatable")
    build.add_argument("--timeout", type=float, default=60.0, help="seconds a connection may stall (default 60)")
    build.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress line (default: on a terminal, off when CI is set)")
    check = sub.add_parser("check", help="check the bundle against its lock and the lock against the inventory's pins")
    common(check)
    check.add_argument("--artifacts", help="artifacts directory (default <inventory>/artifacts)")
    unpack_p = sub.add_parser("unpack", help="check FILE.tar against FILE.tar.sha256, extract it into the inventory, check")
    common(unpack_p)
    unpack_p.add_argument("archive", metavar="FILE.tar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ansible_args = [f"--vault-password-file={f}" for f in args.vault_password_file] + [f"--vault-id={v}" for v in args.vault_id]
    try:
        started = time.monotonic()
        pins = read_pins(args.inventory, ansible_args)
        say("pins: read from %s in %.1f s" % (args.inventory, time.monotonic() - started))
        if args.command == "build":
            return Builder(args, pins).run()
        if args.command == "unpack":
            return run_check(unpack(args.archive, args.inventory), pins)
        return run_check(os.path.abspath(args.artifacts or os.path.join(pins["inventory_dir"], "artifacts")), pins)
    except (Failure, registry.RegistryError) as exc:
        say("%s: %s" % (args.command, exc))
        return EXIT_PROBLEMS


if __name__ == "__main__":
    sys.exit(main())
