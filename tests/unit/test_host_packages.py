"""Host prerequisites are installed once, before anything runs in parallel: the image builds
never call apt-get (two at once fail on the dpkg lock, as they did on a fresh machine)."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def stub_bin(tmp_path: pathlib.Path, **scripts: str) -> pathlib.Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
    return bin_dir


def run_with(bin_dir: pathlib.Path, *cmd: str) -> subprocess.CompletedProcess:
    # Only the stubs and the basic tools: debootstrap, dockerd and apt-get live in /usr/sbin or are
    # stubbed, so this is a machine that never had debootstrap.
    path = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(list(cmd), cwd=ROOT, env={"PATH": path, "HOME": os.environ.get("HOME", "/root")},
                          capture_output=True, text=True, timeout=60)


def test_image_build_without_debootstrap_stops_at_once_and_never_calls_apt(tmp_path):
    log = tmp_path / "calls"
    bin_dir = stub_bin(
        tmp_path,
        docker="exit 1",  # no image is present: both would have to be built
        **{"apt-get": f"echo apt-get \"$@\" >>{log}; exit 0"},
    )
    run = run_with(bin_dir, "bash", "tests/images/build.sh")
    assert run.returncode != 0
    assert "run scripts/host-packages.sh first" in run.stderr
    assert not log.exists(), f"build.sh called apt-get: {log.read_text()}"


def test_only_host_packages_installs_host_packages():
    for path in list((ROOT / "scripts").glob("*.sh")) + list((ROOT / "tests/images").glob("*.sh")) + [ROOT / ".ci/run"]:
        if path.name == "host-packages.sh":
            continue
        assert "apt-get install" not in path.read_text(), f"{path.relative_to(ROOT)} installs packages itself"


PRESENT = {name: "exit 0" for name in ("dockerd", "iptables", "debootstrap", "ssh", "ssh-keygen", "nginx")}


def promtool_stubs(tmp_path: pathlib.Path, log: pathlib.Path) -> pathlib.Path:
    """Every host package present; apt-get logs its calls and `download` leaves a .deb; dpkg-deb
    lists a data archive that holds usr/bin/promtool (and the server, which must not be kept)."""
    return stub_bin(
        tmp_path,
        **PRESENT,
        **{"apt-get": f'echo apt-get "$@" >>{log}; [[ $2 == download ]] && touch "$3"_2.42.0_amd64.deb; exit 0',
           "dpkg-deb": f'echo dpkg-deb "$@" >>{log}; [[ -f $2 ]] || exit 1; d=$(mktemp -d); mkdir -p "$d/usr/bin";'
                       ' printf "#!/bin/sh\\necho promtool stub\\n" >"$d/usr/bin/promtool"; touch "$d/usr/bin/prometheus";'
                       ' tar -C "$d" -c ./usr/bin/promtool ./usr/bin/prometheus; rm -rf "$d"'},
    )


def test_promtool_is_extracted_once_from_debians_package_never_installed(tmp_path):
    log = tmp_path / "calls"
    cache = tmp_path / "cache"
    bin_dir = promtool_stubs(tmp_path, log)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "OLLAMA_FLEET_CACHE": str(cache)}
    run = subprocess.run(["bash", "scripts/host-packages.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "apt-get update -qq"
    assert "apt-get -qq download prometheus" in calls
    assert [c for c in calls if c.startswith("dpkg-deb --fsys-tarfile /") and c.endswith("/prometheus_2.42.0_amd64.deb")], calls
    assert not [c for c in calls if c.startswith("apt-get install")], calls
    tool = cache / "promtool" / "usr" / "bin" / "promtool"
    assert os.access(tool, os.X_OK) and subprocess.run([str(tool)], capture_output=True, text=True).stdout == "promtool stub\n"
    assert not (cache / "promtool" / "usr" / "bin" / "prometheus").exists(), "only promtool is kept"
    # Present now: a second run asks apt nothing.
    log.unlink()
    again = subprocess.run(["bash", "scripts/host-packages.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert not log.exists(), log.read_text()


def test_promtool_on_path_needs_nothing(tmp_path):
    log = tmp_path / "calls"
    bin_dir = promtool_stubs(tmp_path, log)
    (bin_dir / "promtool").write_text("#!/bin/bash\nexit 0\n")
    (bin_dir / "promtool").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "OLLAMA_FLEET_CACHE": str(tmp_path / "cache")}
    run = subprocess.run(["bash", "scripts/host-packages.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert not log.exists(), log.read_text()


def test_test_sh_installs_host_packages_before_the_unit_tests():
    text = (ROOT / "scripts/test.sh").read_text()
    assert "if want molecule || want unit; then\n  stage host scripts/host-packages.sh" in text
    assert text.index("stage host scripts/host-packages.sh") < text.index("want unit && stage unit unit")


def nginx_stubs(tmp_path: pathlib.Path, log: pathlib.Path) -> pathlib.Path:
    """Every host package and promtool present, nginx not; apt-get logs its calls and `download`
    leaves a .deb per package; dpkg-deb gives a data archive with the binary, mime.types and a
    systemd unit (which must not be kept)."""
    present = {k: v for k, v in PRESENT.items() if k != "nginx"}
    return stub_bin(
        tmp_path,
        **present,
        promtool="exit 0",
        **{"apt-get": f'echo apt-get "$@" >>{log}; [[ $2 == download ]] && for p in "${{@:3}}"; do touch "$p"_1.22.1_all.deb; done; exit 0',
           "dpkg-deb": f'echo dpkg-deb "$@" >>{log}; [[ -f $2 ]] || exit 1; d=$(mktemp -d); mkdir -p "$d/usr/sbin" "$d/etc/nginx" "$d/lib/systemd/system";'
                       ' printf "#!/bin/sh\\necho nginx stub\\n" >"$d/usr/sbin/nginx"; chmod +x "$d/usr/sbin/nginx"; echo "types {}" >"$d/etc/nginx/mime.types";'
                       ' touch "$d/lib/systemd/system/nginx.service"; tar -C "$d" -c ./usr ./etc ./lib; rm -rf "$d"'},
    )


def test_nginx_is_extracted_once_from_debians_packages_never_installed(tmp_path):
    log = tmp_path / "calls"
    cache, temp = tmp_path / "cache", tmp_path / "var-lib-nginx"
    bin_dir = nginx_stubs(tmp_path, log)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "OLLAMA_FLEET_CACHE": str(cache), "OLLAMA_FLEET_NGINX_TEMP": str(temp)}
    run = subprocess.run(["bash", "scripts/host-packages.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "apt-get update -qq"
    assert "apt-get -qq download nginx nginx-common" in calls
    assert not [c for c in calls if c.startswith("apt-get install")], calls
    tool = cache / "nginx" / "usr" / "sbin" / "nginx"
    assert os.access(tool, os.X_OK) and subprocess.run([str(tool)], capture_output=True, text=True).stdout == "nginx stub\n"
    assert (cache / "nginx" / "etc" / "nginx" / "mime.types").read_text() == "types {}\n"
    assert not list(cache.rglob("nginx.service")), "no service is kept"
    assert sorted(p.name for p in temp.iterdir()) == ["body", "fastcgi", "proxy", "scgi", "uwsgi"]
    # Present now: a second run asks apt nothing.
    log.unlink()
    again = subprocess.run(["bash", "scripts/host-packages.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert not log.exists(), log.read_text()


def test_nginx_tests_fail_under_ci_without_nginx(tmp_path):
    """The mirror's nginx tests skip on a developer's machine without nginx, and fail under CI."""
    test = "tests/unit/test_ollama_mirror.py::test_broken_config_is_refused_by_the_validate_command"
    env = {**os.environ, "OLLAMA_FLEET_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    runs = {ci: subprocess.run([str(ROOT / ".venv/bin/pytest"), "-p", "no:cacheprovider", "-q", test],
                               cwd=ROOT, env={**env, "CI": ci}, capture_output=True, text=True, timeout=600) for ci in ("", "true")}
    if os.access("/usr/sbin/nginx", os.X_OK):
        pytest.skip("nginx is installed system-wide here: both runs would find it")
    assert runs[""].returncode == 0 and "1 skipped" in runs[""].stdout, runs[""].stdout[-2000:]
    assert runs["true"].returncode != 0 and "run scripts/host-packages.sh" in runs["true"].stdout, runs["true"].stdout[-2000:]
