#!/usr/bin/env python3
"""Build release archives of the ollama STAND-IN (a test fixture, not Ollama).

    python3 tests/ollama_standin/build_release.py --version 0.33.0 --out DIR [--fail-start]

Writes, like an Ollama GitHub release:
    DIR/ollama-linux-amd64.tgz      DIR/ollama-linux-amd64.tar.zst
    DIR/ollama-linux-arm64.tgz      DIR/ollama-linux-arm64.tar.zst
    DIR/sha256sum.txt               ("<hex>  ./<file>" lines, as `sha256sum` prints them)
Each archive holds bin/ollama (a python3 script) and lib/ollama/standin/*.py.
The output is deterministic: same version and flags -> same bytes.
"""

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
MTIME = 1700000000  # fixed timestamp for every archive member
ARCHES = ("amd64", "arm64")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+~-]*$")


def members(version: str, fail_start: bool) -> List[Tuple[str, bytes, int]]:
    """(archive path, content, mode) for every file; directories are implied."""
    out = []
    with open(os.path.join(SRC, "bin", "ollama"), "rb") as f:
        out.append(("bin/ollama", f.read(), 0o755))
    pkg = os.path.join(SRC, "standin")
    for fname in sorted(os.listdir(pkg)):
        if not fname.endswith(".py"):
            continue
        if fname == "build_info.py":
            data = ('"""Baked in by build_release.py."""\n\nVERSION = %r\nFAIL_START = %r\n' % (version, fail_start)).encode()
        else:
            with open(os.path.join(pkg, fname), "rb") as f:
                data = f.read()
        out.append(("lib/ollama/standin/" + fname, data, 0o644))
    return out


def tar_bytes(files: List[Tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs_done = set()
        for path, data, mode in sorted(files):
            parent = os.path.dirname(path)
            if parent.startswith("lib/ollama/") and parent not in dirs_done:
                info = tarfile.TarInfo(parent)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                _normalise(info)
                tar.addfile(info)
                dirs_done.add(parent)
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            _normalise(info)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _normalise(info: tarfile.TarInfo) -> None:
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def zstd_bytes(data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError:
        if not shutil.which("zstd"):
            sys.exit("build_release.py: need the 'zstandard' module or the 'zstd' command")
        return subprocess.run(["zstd", "-19", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    return zstandard.ZstdCompressor(level=19).compress(data)


def build(version: str, out_dir: str, fail_start: bool) -> List[str]:
    os.makedirs(out_dir, exist_ok=True)
    tar = tar_bytes(members(version, fail_start))
    payloads = {"tgz": gzip_bytes(tar), "tar.zst": zstd_bytes(tar)}
    written = []
    for arch in ARCHES:
        for ext, data in payloads.items():
            name = "ollama-linux-%s.%s" % (arch, ext)
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(data)
            written.append(name)
    lines = []
    for name in sorted(written):
        with open(os.path.join(out_dir, name), "rb") as f:
            lines.append("%s  ./%s\n" % (hashlib.sha256(f.read()).hexdigest(), name))
    with open(os.path.join(out_dir, "sha256sum.txt"), "w") as f:
        f.writelines(lines)
    return sorted(written) + ["sha256sum.txt"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", required=True, help="version to bake in, e.g. 0.33.0")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--fail-start", action="store_true", help="bake a binary whose `serve` exits 1 at once")
    args = ap.parse_args()
    if not VERSION_RE.match(args.version):
        ap.error("invalid --version %r" % args.version)
    for name in build(args.version, args.out, args.fail_start):
        print(os.path.join(args.out, name))
    print("[ollama stand-in] built test-fixture release %s%s (not Ollama)" % (args.version, " (--fail-start)" if args.fail_start else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
