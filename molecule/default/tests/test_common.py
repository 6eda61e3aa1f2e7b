"""Baseline every host gets from the `common` role."""

import pytest

TIME_SYNC = {"debian": "systemd-timesyncd", "ubuntu": "systemd-timesyncd"}


@pytest.mark.parametrize("pkg", ["ca-certificates", "curl", "tar", "zstd", "acl"])
def test_baseline_packages_installed(host, pkg):
    assert host.package(pkg).is_installed


def test_systemd_is_pid1_and_healthy(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", f"failed units: {failed}"


def test_time_sync_enabled(host):
    service = TIME_SYNC.get(host.system_info.distribution, "chronyd")
    assert host.service(service).is_enabled


def test_journal_is_persistent(host):
    conf = host.file("/etc/systemd/journald.conf.d/50-ollama-fleet.conf")
    assert "Storage=persistent" in conf.content_string
    assert "SystemMaxUse=256M" in conf.content_string
    assert host.file("/var/log/journal").is_directory
    # After the handler restarted journald, it keeps its files under /var/log/journal.
    files = host.run("find /var/log/journal -name '*.journal'").stdout.split()
    assert files, "journald writes no file under /var/log/journal"
