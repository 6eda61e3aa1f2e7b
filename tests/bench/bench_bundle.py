#!/usr/bin/env python3
"""Benchmark of the air-gap bundle command (not a test: pytest does not collect bench_*.py).

    .venv/bin/python tests/bench/bench_bundle.py [--size-gib 2] [--keep DIR]

On loopback only: the ollama STAND-IN's registry (tests/ollama_standin/serve_registry.py, blobs
307-redirected to http://localhost:<port>/..., as registry.ollama.ai sends its CDN) serves a model
of `size-gib` GiB that build_model.py makes, and the stand-in's release. Figures are stand-in
registry figures on this machine, not registry.ollama.ai's.

1. plain download: the model's blobs and manifest and the release archive fetched one after
   the other with one GET each (urllib, body hashed as it arrives and written to disk), no checks;
2. `scripts/ollama_bundle.py build` of a one-node inventory pinning that model and release, from
   nothing: wall time and bytes it reports fetched; ratio build / plain (goal <= 1.1);
3. the same build again: wall time (goal <= 5 s) and bytes fetched (goal 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "ollama_standin"
VERSION = "0.33.0"
NAME = "bench:2g"


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True, **kw)


def plain(url: str, dest: pathlib.Path) -> int:
    digest, size = hashlib.sha256(), 0
    # One GET of the whole body ("bytes=0-": the stand-in's CDN host serves blobs to Range requests only).
    request = urllib.request.Request(url, headers={"Range": "bytes=0-"})
    with urllib.request.urlopen(request, timeout=60) as resp, open(dest, "wb") as out:
        for block in iter(lambda: resp.read(1 << 20), b""):
            out.write(block)
            digest.update(block)
            size += len(block)
    return size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gib", type=float, default=2.0)
    ap.add_argument("--keep", help="work directory to use and keep (default: a temporary one, removed)")
    args = ap.parse_args()
    work = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="bench-bundle-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        models, release, tree = work / "models", work / "release", work / "tree"
        size = int(args.size_gib * (1 << 30))
        t0 = time.monotonic()
        digest = run(sys.executable, STANDIN / "build_model.py", "--name", NAME, "--variant", "instruct", "--size", size,
                     "--out", models).stdout.split()[0]
        run(sys.executable, STANDIN / "build_release.py", "--version", VERSION, "--out", release)
        run(sys.executable, STANDIN / "make_registry_tree.py", "--models", models, "--out", tree)
        shutil.copytree(release, tree / "download" / ("v" + VERSION))
        print("fixture: %s (%d bytes of model blob) built in %.1f s" % (NAME, size, time.monotonic() - t0))
        server = subprocess.Popen([sys.executable, str(STANDIN / "serve_registry.py"), "--root", str(tree), "--redirect-host", "localhost"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = int(server.stdout.readline())
            base = "http://127.0.0.1:%d" % port
            manifest = (models / "manifests/registry.ollama.ai/library/bench/2g").read_bytes()
            layers = json.loads(manifest)["layers"] + [json.loads(manifest)["config"]]
            archive = "ollama-linux-amd64.tar.zst"

            (work / "plain").mkdir(exist_ok=True)
            t0 = time.monotonic()
            moved = plain(base + "/v2/library/bench/manifests/2g", work / "plain" / "manifest")
            for layer in layers:
                # The CDN's URL, as the bundle reaches it after the 307.
                moved += plain("http://localhost:%d/v2/library/bench/blobs/%s" % (port, layer["digest"]), work / "plain" / "blob")
            moved += plain("%s/download/v%s/%s" % (base, VERSION, archive), work / "plain" / archive)
            moved += plain("%s/download/v%s/sha256sum.txt" % (base, VERSION), work / "plain" / "sha256sum.txt")
            plain_s = time.monotonic() - t0
            shutil.rmtree(work / "plain")

            inv = work / "site"
            (inv / "group_vars").mkdir(parents=True, exist_ok=True)
            (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"ollama_nodes": {"hosts": {"gpu01": None}}}}}))
            sums = (release / "sha256sum.txt").read_text()
            pin = re.search(r"^([0-9a-f]{64}) +\S*%s$" % re.escape(archive), sums, re.M).group(1)
            (inv / "group_vars/ollama_nodes.yml").write_text(yaml.safe_dump({
                "ollama_version": VERSION, "ollama_release_pins": {VERSION: {"amd64": "sha256:" + pin}},
                "ollama_models_list": [{"name": NAME, "digest": "sha256:" + digest}]}))
            shutil.rmtree(inv / "artifacts", ignore_errors=True)
            cmd = [sys.executable, str(ROOT / "scripts/ollama_bundle.py"), "build", "-i", str(inv), "--registry",
                   "registry.ollama.ai=" + base, "--release-url", base + "/download"]
            env = {**os.environ, "CI": "true"}
            # The inventory is read by ansible-playbook in both runs: timed apart, so the ratio is the transfer's.
            t0 = time.monotonic()
            first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            build_s = time.monotonic() - t0
            t0 = time.monotonic()
            second = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if second.returncode:
                raise SystemExit(second.stdout + second.stderr)
            rerun_s = time.monotonic() - t0
            t0 = time.monotonic()
            run(sys.executable, ROOT / "scripts/ollama_bundle.py", "check", "-i", inv, env=env)
            check_s = time.monotonic() - t0
        finally:
            server.terminate()
            server.wait(10)

        def fetched(proc: subprocess.CompletedProcess) -> int:
            return int(re.search(r"fetched (\d+) bytes", proc.stdout.splitlines()[-1]).group(1))

        print("stand-in registry on loopback (serve_registry.py, CDN-style 307), not registry.ollama.ai:")
        print("  plain download:  %d bytes in %.2f s (%.0f MiB/s)" % (moved, plain_s, moved / plain_s / 1048576))
        print("  bundle build:    %d bytes fetched in %.2f s (incl. reading the inventory with ansible-playbook)"
              % (fetched(first), build_s))
        pins_s = float(re.search(r"^pins: read from .* in ([0-9.]+) s$", first.stdout, re.M).group(1))
        print("  bytes ratio build/plain: %.4f   time ratio build/plain: %.3f, without reading the inventory (%.1f s): %.3f "
              "(goal <= 1.1)" % (fetched(first) / moved, build_s / plain_s, pins_s, (build_s - pins_s) / plain_s))
        print("  re-run:          %d bytes fetched in %.2f s (goal 0 bytes, <= 5 s)" % (fetched(second), rerun_s))
        print("  check (cached hashes): %.2f s" % check_s)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
