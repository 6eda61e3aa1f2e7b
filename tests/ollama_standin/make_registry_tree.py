#!/usr/bin/env python3
"""Lay out a models directory as a static registry tree (ollama STAND-IN test fixture).

    python3 tests/ollama_standin/make_registry_tree.py --models MODELS_DIR --out TREE

For every manifest MODELS_DIR/manifests/<host>/<ns>/<model>/<tag> it writes
    TREE/v2/<ns>/<model>/manifests/<tag>          (the manifest, byte for byte)
    TREE/v2/<ns>/<model>/blobs/sha256:<hex>       (hard link to, or copy of, each blob)
which are the paths Ollama requests from a registry.  Serve TREE with a web server
that supports Range requests AND tells Ollama where the blob is: real Ollama
refuses a blob GET answered 200 without a Location header (see README), so use
serve_registry.py, or nginx with `add_header Location $uri;` on the blobs.
"""

import argparse
import json
import os
import shutil
import sys


def link_or_copy(src: str, dst: str) -> None:
    if os.path.exists(dst):
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build(models: str, out: str) -> list:
    root = os.path.join(models, "manifests")
    written = []
    for dirpath, _dirs, files in sorted(os.walk(root)):
        for tag in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, tag), root).split(os.sep)
            if len(rel) != 4:
                continue
            _host, namespace, model, _tag = rel
            with open(os.path.join(dirpath, tag), "rb") as f:
                raw = f.read()
            manifest = json.loads(raw)
            repo = os.path.join(out, "v2", namespace, model)
            os.makedirs(os.path.join(repo, "manifests"), exist_ok=True)
            os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
            with open(os.path.join(repo, "manifests", tag), "wb") as f:
                f.write(raw)
            layers = list(manifest.get("layers") or []) + [manifest["config"]]
            for layer in layers:
                digest = layer["digest"]
                src = os.path.join(models, "blobs", digest.replace(":", "-"))
                link_or_copy(src, os.path.join(repo, "blobs", digest))
            written.append("%s/%s:%s" % (namespace, model, tag))
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="an OLLAMA_MODELS directory")
    ap.add_argument("--out", required=True, help="output tree")
    args = ap.parse_args()
    for entry in build(args.models, args.out):
        print(entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
