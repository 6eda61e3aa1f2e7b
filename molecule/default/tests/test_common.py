"""Baseline every host gets from the `common` role."""

import pytest

TIME_SYNC = {"debian": "systemd-timesyncd", "ubuntu": "systemd-timesyncd"}


@pytest.fixture(scope="module")
def inv(host):
    """Inventory variables of the host (the production example's group_vars, untemplated)."""
    return host.ansible.get_variables()


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
    if host.package("chrony").is_installed:
        service = "chronyd" if host.system_info.distribution in ("rocky", "almalinux", "redhat") else "chrony"
    else:
        service = TIME_SYNC.get(host.system_info.distribution, "chronyd")
    assert host.service(service).is_enabled


def test_existing_chrony_is_kept_and_gets_the_site_servers(host, inv):
    """prepare.yml gave fleet-debian13 chrony, as a site's image would."""
    if host.backend.get_hostname() != "fleet-debian13":
        pytest.skip("only fleet-debian13 came with chrony")
    assert host.package("chrony").is_installed
    assert not host.package("systemd-timesyncd").is_installed, "timesyncd replaced the site's chrony"
    sources = host.file("/etc/chrony/sources.d/ollama-fleet.sources").content_string
    assert [line.split()[1] for line in sources.splitlines() if line.startswith("server ")] == inv["common_ntp_servers"]


def test_timesyncd_gets_the_site_servers(host, inv):
    if host.package("chrony").is_installed:
        pytest.skip("this host keeps chrony")
    dropin = host.file("/etc/systemd/timesyncd.conf.d/50-ollama-fleet.conf").content_string
    assert f"NTP={' '.join(inv['common_ntp_servers'])}" in dropin.splitlines()


def test_journal_is_persistent(host, inv):
    conf = host.file("/etc/systemd/journald.conf.d/50-ollama-fleet.conf")
    assert "Storage=persistent" in conf.content_string
    assert f"SystemMaxUse={inv['common_journal_max_use']}" in conf.content_string
    assert host.file("/var/log/journal").is_directory
    # After the handler restarted journald, it keeps its files under /var/log/journal.
    files = host.run("find /var/log/journal -name '*.journal'").stdout.split()
    assert files, "journald writes no file under /var/log/journal"
