"""keepalived's notify script (roles/keepalived/templates/keepalived-state-metric.j2): each VRRP
state change becomes a metric file per instance for node exporter's textfile collector, written
atomically; the configuration calls it from every instance."""

from __future__ import annotations

import pathlib
import subprocess

import jinja2
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "keepalived"


@pytest.fixture
def script(tmp_path):
    text = jinja2.Template((ROLE / "templates" / "keepalived-state-metric.j2").read_text()).render(
        ansible_managed="managed", keepalived_state_metric_dir=str(tmp_path / "textfile"))
    path = tmp_path / "notify.sh"
    path.write_text(text)
    path.chmod(0o755)
    (tmp_path / "textfile").mkdir()
    return path


def notify(script, *args):
    return subprocess.run(["/bin/sh", str(script), *args], capture_output=True, text=True, check=False, timeout=10)


def values(path):
    return {k: v for k, v in (line.rsplit(" ", 1) for line in path.read_text().splitlines() if not line.startswith("#"))}


def test_each_state_change_rewrites_the_instance_file(script, tmp_path):
    out = tmp_path / "textfile"
    assert notify(script, "INSTANCE", "front", "BACKUP", "100").returncode == 0
    assert notify(script, "INSTANCE", "second", "MASTER", "100").returncode == 0
    got = values(out / "keepalived_front.prom")
    assert got['keepalived_vrrp_state{vrrp_instance="front",state="BACKUP"}'] == "1"
    assert got['keepalived_vrrp_state{vrrp_instance="front",state="MASTER"}'] == "0"
    assert got['keepalived_vrrp_master{vrrp_instance="front"}'] == "0"
    assert int(got['keepalived_vrrp_state_change_timestamp_seconds{vrrp_instance="front"}']) > 1.7e9
    assert notify(script, "INSTANCE", "front", "MASTER", "100").returncode == 0
    got = values(out / "keepalived_front.prom")
    assert got['keepalived_vrrp_master{vrrp_instance="front"}'] == "1"
    assert got['keepalived_vrrp_state{vrrp_instance="front",state="MASTER"}'] == "1"
    assert got['keepalived_vrrp_state{vrrp_instance="front",state="BACKUP"}'] == "0"
    assert values(out / "keepalived_second.prom")['keepalived_vrrp_master{vrrp_instance="second"}'] == "1"
    # Only the two files: no temporary left, and each mode 0644 for the exporter's user.
    assert sorted(p.name for p in out.iterdir()) == ["keepalived_front.prom", "keepalived_second.prom"]
    assert all(oct(p.stat().st_mode & 0o777) == "0o644" for p in out.iterdir())


def test_fault_and_stop_are_not_master(script, tmp_path):
    for state in ("FAULT", "STOP"):
        notify(script, "INSTANCE", "front", state, "100")
        got = values(tmp_path / "textfile" / "keepalived_front.prom")
        assert got['keepalived_vrrp_master{vrrp_instance="front"}'] == "0"
        assert got['keepalived_vrrp_state{vrrp_instance="front",state="%s"}' % state] == "1"


def test_odd_names_groups_and_a_missing_directory_are_harmless(script, tmp_path):
    assert notify(script, "GROUP", "g1", "MASTER", "0").returncode == 0
    assert notify(script, "INSTANCE", 'bad"name}', "MASTER", "0").returncode == 0
    assert sorted(p.name for p in (tmp_path / "textfile").iterdir()) == ["keepalived_bad_name_.prom"]
    (tmp_path / "textfile" / "keepalived_bad_name_.prom").unlink()
    (tmp_path / "textfile").rmdir()
    assert notify(script, "INSTANCE", "front", "MASTER", "0").returncode == 0


def test_every_instance_notifies_the_script():
    conf = (ROLE / "templates" / "keepalived.conf.j2").read_text()
    instance = conf[conf.index("vrrp_instance {{ instance.name }}"):conf.rindex("{% endfor %}")]
    assert 'notify "{{ keepalived_state_metric_script }}" root' in instance
