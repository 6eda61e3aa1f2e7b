"""What survives the upgrade scenario: 0.33.0 active, 0.32.15 kept, failed attempts left no trace."""

import json


def test_active_version_is_the_upgrade(host):
    assert host.file("/opt/ollama/current").linked_to == "/opt/ollama/versions/0.33.0"


def test_previous_version_is_kept_for_rollback(host):
    record = json.loads(host.file("/opt/ollama/versions/0.32.15/.ollama-fleet-install.json").content_string)
    assert record["version"] == "0.32.15"
    assert host.file("/opt/ollama/versions/0.32.15/bin/ollama").mode & 0o111


def test_corrupted_archive_left_nothing(host):
    assert not host.file("/opt/ollama/versions/0.33.2").exists
    assert host.file("/opt/ollama/staging").listdir() == []


def test_failed_version_is_first_in_line_for_pruning(host):
    failed = host.file("/opt/ollama/versions/0.33.1")
    assert failed.exists, "the rolled-back version should stay until the next successful run prunes it"
    assert failed.mtime.timestamp() < host.file("/opt/ollama/versions/0.32.15").mtime.timestamp()


def test_no_configuration_backups_left(host):
    leftovers = host.run("find /etc/systemd/system /etc/ollama -maxdepth 1 -name '*~'").stdout.split()
    assert leftovers == []


def test_service_was_not_left_failed(host):
    assert host.check_output("systemctl is-active ollama.service") == "active"
    assert host.run("systemctl is-failed ollama.service").stdout.strip() != "failed"
