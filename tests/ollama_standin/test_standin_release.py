"""The release archives: layout, checksums, determinism, baked-in version, --fail-start."""

import hashlib
import os
import subprocess
import tarfile

import pytest

from standin_helpers import OLD_VERSION, VERSION, build_release, unpack

ARCHIVES = ["ollama-linux-amd64.tar.zst", "ollama-linux-amd64.tgz", "ollama-linux-arm64.tar.zst", "ollama-linux-arm64.tgz"]


def test_release_files_and_sha256sum_format(release_dir):
    assert sorted(os.listdir(release_dir)) == sorted(ARCHIVES + ["sha256sum.txt"])
    lines = open(os.path.join(release_dir, "sha256sum.txt")).read().splitlines()
    assert [line.split("  ./")[1] for line in lines] == sorted(ARCHIVES)
    for line in lines:
        digest, name = line.split("  ./")
        assert hashlib.sha256(open(os.path.join(release_dir, name), "rb").read()).hexdigest() == digest


def test_tgz_layout(release_dir):
    with tarfile.open(os.path.join(release_dir, "ollama-linux-amd64.tgz")) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/ollama"].mode == 0o755
    assert "lib/ollama/standin/server.py" in members
    assert all(n == "bin/ollama" or n.startswith("lib/ollama/") for n in members)
    assert {(m.uid, m.gid) for m in members.values()} == {(0, 0)}


@pytest.mark.parametrize("archive", ["ollama-linux-amd64.tar.zst", "ollama-linux-arm64.tgz"])
def test_every_archive_unpacks_to_a_working_binary(release_dir, tmp_path, archive):
    binary = unpack(os.path.join(release_dir, archive), str(tmp_path))
    assert os.path.isdir(tmp_path / "lib" / "ollama")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, env={"OLLAMA_HOST": "127.0.0.1:9", "PATH": os.environ["PATH"]})
    assert out.returncode == 0
    assert out.stdout == "Warning: could not connect to a running Ollama instance\nWarning: client version is %s\n" % VERSION


def test_build_is_deterministic(release_dir, tmp_path):
    again = build_release(VERSION, str(tmp_path / "again"))
    assert open(os.path.join(again, "sha256sum.txt")).read() == open(os.path.join(release_dir, "sha256sum.txt")).read()


def test_versions_are_baked_in(tmp_path, make_standin):
    old_bin = unpack(os.path.join(build_release(OLD_VERSION, str(tmp_path / "old")), "ollama-linux-amd64.tgz"), str(tmp_path / "oldinst"))
    old = make_standin(binary=old_bin)
    assert old.cli("--version").stdout == "ollama version is %s\n" % OLD_VERSION
    assert old.cli("-v").stdout == "ollama version is %s\n" % OLD_VERSION
    new = make_standin()
    mixed = new.cli("--version", env={"OLLAMA_HOST": old.host})
    assert mixed.stdout == "ollama version is %s\nWarning: client version is %s\n" % (OLD_VERSION, VERSION)


def test_symlinked_binary_finds_its_libs(ollama_bin, tmp_path):
    link = tmp_path / "ollama"
    os.symlink(ollama_bin, link)
    out = subprocess.run([str(link), "--version"], capture_output=True, text=True, env={"OLLAMA_HOST": "127.0.0.1:9", "PATH": os.environ["PATH"]})
    assert out.returncode == 0 and VERSION in out.stdout


def test_fail_start_binary_refuses_to_serve(tmp_path):
    binary = unpack(os.path.join(build_release(VERSION, str(tmp_path / "bad"), fail_start=True), "ollama-linux-amd64.tgz"), str(tmp_path / "inst"))
    out = subprocess.run([binary, "serve"], capture_output=True, text=True, timeout=10, env={"OLLAMA_HOST": "127.0.0.1:9", "HOME": str(tmp_path)})
    assert out.returncode == 1
    assert out.stderr.startswith("Error: ") and "--fail-start" in out.stderr
    version = subprocess.run([binary, "-v"], capture_output=True, text=True, env={"OLLAMA_HOST": "127.0.0.1:9"})
    assert version.stdout.endswith("Warning: client version is %s\n" % VERSION)
