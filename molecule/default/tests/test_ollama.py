"""The `ollama` role: pinned release, hardened service, configured environment (stand-in server)."""

import json
import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "scripts"))
from lab_report import handed  # noqa: E402  (a `{{ fleet_* }}` hand-over followed to its value)

UNIT = "ollama.service"
PORT = 11434


@pytest.fixture(scope="module")
def inv(host):
    """Inventory variables of the host (lab group_vars), each `{{ name }}` hand-over (the
    production example's fleet_* values) followed to its literal; other templates stay as written."""
    variables = host.ansible.get_variables()
    return {name: handed(variables, value) for name, value in variables.items()}


@pytest.fixture(autouse=True)
def only_ollama_nodes(inv):
    if "ollama_nodes" not in inv.get("group_names", []):
        pytest.skip("not an Ollama node")


@pytest.fixture(scope="module")
def bind_address(host, inv):
    # The production example binds to the address the inventory reaches the node at
    # ("{{ ansible_host }}"); a scenario may give a literal address instead.
    address = inv.get("ollama_bind_address", "127.0.0.1")
    return inv["ansible_host"] if "{{" in address else address


@pytest.fixture(scope="module")
def main_pid(host):
    pid = host.check_output(f"systemctl show -p MainPID --value {UNIT}")
    assert pid not in ("", "0"), "ollama.service has no main process"
    return pid


@pytest.fixture(scope="module")
def props(host):
    out = host.check_output(f"systemctl show {UNIT} --property=" + ",".join([
        "User", "Group", "Restart", "LimitNOFILE", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
        "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
        "ProtectClock", "ProtectHostname", "CapabilityBoundingSet", "RestrictAddressFamilies", "RestrictNamespaces",
        "RestrictSUIDSGID", "LockPersonality", "SystemCallFilter", "SystemCallArchitectures", "ReadWritePaths",
        "EnvironmentFiles", "StartLimitBurst", "After",
    ]))
    return dict(line.split("=", 1) for line in out.splitlines())


def test_service_enabled_and_active(host):
    service = host.service(UNIT)
    assert service.is_enabled
    assert service.is_running


def test_server_runs_as_ollama(host, main_pid):
    assert host.check_output(f"ps -o user= -p {main_pid}").strip() == "ollama"
    user = host.user("ollama")
    assert user.group == "ollama"
    assert user.home == "/usr/share/ollama"
    assert user.shell in ("/usr/sbin/nologin", "/sbin/nologin")
    assert user.uid < 1000, "ollama is not a system user"
    for group in ("render", "video"):
        if host.group(group).exists:
            assert group in user.groups


def test_listens_on_the_configured_address_only(host, bind_address):
    assert host.socket(f"tcp://{bind_address}:{PORT}").is_listening
    if bind_address != "0.0.0.0":
        assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening


def test_api_reports_the_pinned_version(host, inv, bind_address):
    reply = json.loads(host.check_output(f"curl -sf http://{bind_address}:{PORT}/api/version"))
    assert reply["version"] == inv["ollama_version"]


def test_installed_as_versioned_directory_behind_symlinks(host, inv):
    version_dir = f"/opt/ollama/versions/{inv['ollama_version']}"
    assert host.file("/opt/ollama/current").linked_to == version_dir
    assert host.file("/usr/local/bin/ollama").linked_to == f"{version_dir}/bin/ollama"
    assert host.file(f"{version_dir}/lib/ollama").is_directory
    record = json.loads(host.file(f"{version_dir}/.ollama-fleet-install.json").content_string)
    assert record["version"] == inv["ollama_version"]
    assert re.fullmatch(r"[0-9a-f]{64}", record["sha256"])
    assert host.file("/opt/ollama/staging").exists is False or host.file("/opt/ollama/staging").listdir() == []


def test_model_store_belongs_to_ollama(host):
    store = host.file("/usr/share/ollama/.ollama/models")
    assert store.is_directory
    assert (store.user, store.group, store.mode) == ("ollama", "ollama", 0o750)


def test_unit_is_hardened(props):
    expected = {
        "User": "ollama", "Group": "ollama", "Restart": "always", "LimitNOFILE": "65536",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "no", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
        "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "SystemCallArchitectures": "native", "StartLimitBurst": "5",
    }
    assert {k: props.get(k) for k in expected} == expected
    assert set(props["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert props["RestrictNamespaces"] == "yes"
    assert "/usr/share/ollama/.ollama/models" in props["ReadWritePaths"].split()
    assert "network-online.target" in props["After"].split()
    # @system-service minus @privileged: mount(2) is privileged, read(2) is not.
    syscalls = props["SystemCallFilter"].split()
    assert "read" in syscalls and "mount" not in syscalls
    # @resources is denied except the CPU-affinity and NUMA calls ggml uses (roles/ollama/README.md).
    assert {"sched_setaffinity", "mbind", "set_mempolicy"} <= set(syscalls) and "setpriority" not in syscalls


def test_sandbox_applies_to_the_running_process(host, main_pid):
    status = host.file(f"/proc/{main_pid}/status").content_string
    fields = dict(re.findall(r"^(\w+):\s*(.*)$", status, re.M))
    assert fields["NoNewPrivs"] == "1"
    assert int(fields["CapBnd"], 16) == 0
    assert int(fields["Seccomp"]) == 2, "no seccomp filter"


def test_exposure_score_is_low(host):
    out = host.check_output(f"systemd-analyze security {UNIT} --no-pager")
    score = float(re.search(r"Overall exposure level for ollama\.service: ([0-9.]+)", out).group(1))
    # Ollama's own install.sh unit scores 9.2 (UNSAFE) here.
    assert score <= 2.0, out


def test_server_runs_with_the_configured_environment(host, inv, main_pid):
    # Ollama logs the configuration it parsed ("server config" line) when it starts.
    log = host.check_output(f"journalctl -u {UNIT} _PID={main_pid} -o cat --no-pager")
    config = re.search(r'msg="server config" env="map\[(.*)\]"', log)
    assert config, log
    env = config.group(1)
    assert f"OLLAMA_CONTEXT_LENGTH:{inv['ollama_context_length']} " in env
    assert f"OLLAMA_NUM_PARALLEL:{inv['ollama_num_parallel']} " in env
    assert "OLLAMA_NO_CLOUD:true " in env
    assert "OLLAMA_MODELS:/usr/share/ollama/.ollama/models " in env


def test_environment_file_is_private(host):
    env = host.file("/etc/ollama/ollama.env")
    assert (env.user, env.mode) == ("root", 0o600)
    assert host.file("/etc/systemd/system/ollama.service").contains("EnvironmentFile=/etc/ollama/ollama.env")
