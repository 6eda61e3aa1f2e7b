"""Input checks of the `ollama` role: bad values fail before any host is touched, naming the variable.

The entry point is included as `tasks_from: validate` (no extension): only then does Ansible
match it to the `validate` argument spec and check types and choices too.
All cases run in one ansible-playbook call on localhost (one play per case, each including the
role's validate entry point in a block/rescue), so the whole file costs one Ansible start-up.
"""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The role defaults pin no release, so every case starts from a pin of the default version.
PINS = {"ollama_release_pins": {"0.33.0": {"amd64": "sha256:" + "a" * 64, "arm64": "b" * 64}}}
GOOD = {}  # the role defaults (and PINS)
# The lab's Ollama nodes: the production example with the lab overlay on top.
LAB = {
    k: v
    for group in ("all", "ollama_nodes")
    for f in ("00-production.yml", "10-lab.yml")
    if (ROOT / "inventories/lab/group_vars" / group / f).exists()
    for k, v in (yaml.safe_load((ROOT / "inventories/lab/group_vars" / group / f).read_text()) or {}).items()
    if k.startswith(("ollama_", "fleet_")) and not k.startswith(("ollama_models_", "ollama_verify_", "ollama_metrics_"))
}

# (case id, variables, text the failure must contain; None = must pass). A looped check fails with
# "One or more items failed" and names the variable in the failed item's message: both are kept.
CASES = [
    ("defaults", GOOD, None),
    ("lab", {**LAB, **PINS, "ollama_controller_dir": "/srv/releases/0.33.0", "ollama_bind_address": "172.28.10.11"}, None),
    ("production-pins", {"ollama_release_pins": yaml.safe_load((ROOT / "inventories/production/group_vars/ollama_nodes.yml").read_text())["ollama_release_pins"]}, None),
    # The release is trusted on the inventory's word (#23): no pin, no install.
    ("unpinned-version", {"ollama_release_pins": {}}, "ollama_release_pins has no sha256 for Ollama 0.33.0"),
    ("unpinned-upgrade", {"ollama_version": "0.34.0"}, "ollama_release_pins has no sha256 for Ollama 0.34.0"),
    ("pins-not-hex", {"ollama_release_pins": {"0.33.0": {"amd64": "abc123"}}}, "ollama_release_pins must map"),
    ("pins-bad-arch", {"ollama_release_pins": {"0.33.0": {"x86": "a" * 64}}}, "ollama_release_pins must map"),
    ("pins-not-per-arch", {"ollama_release_pins": {"0.33.0": "a" * 64}}, "ollama_release_pins must map"),
    ("rc-version", {"ollama_version": "0.34.0-rc2", "ollama_release_pins": {"0.34.0-rc2": {"amd64": "c" * 64}}}, None),
    ("ipv6-any", {"ollama_bind_address": "::"}, None),
    ("hostname", {"ollama_bind_address": "node1.example.internal"}, None),
    ("mirror", {"ollama_source": "mirror", "ollama_mirror_url": "https://mirror.example.internal/ollama/"}, None),
    ("file", {"ollama_source": "controller", "ollama_controller_file": "/srv/o.tar.zst", "ollama_checksum": "A" * 64}, None),
    ("keepalive-forever", {"ollama_keep_alive": "-1"}, None),
    ("keepalive-compound", {"ollama_keep_alive": "1h30m"}, None),
    ("proxy", {"ollama_https_proxy": "http://user:pw@proxy.example.internal:3128", "ollama_no_proxy": "localhost,.internal"}, None),
    ("extra-env", {"ollama_extra_env": {"OLLAMA_ORIGINS": "https://app.example", "OLLAMA_DEBUG": True}}, None),
    ("version-v", {"ollama_version": "v0.33.0"}, "ollama_version"),
    ("version-short", {"ollama_version": "0.33"}, "ollama_version"),
    ("version-beta", {"ollama_version": "0.33.0-beta1"}, "ollama_version"),
    ("checksum-short", {"ollama_checksum": "abc123"}, "ollama_checksum"),
    ("checksum-nonhex", {"ollama_checksum": "g" * 64}, "ollama_checksum"),
    ("release-url", {"ollama_release_url": "ftp://example.org/x"}, "ollama_release_url"),
    ("mirror-missing", {"ollama_source": "mirror"}, "ollama_mirror_url"),
    ("mirror-url", {"ollama_source": "mirror", "ollama_mirror_url": "mirror.internal/ollama"}, "ollama_mirror_url"),
    ("source-choice", {"ollama_source": "s3"}, "ollama_source"),
    ("controller-missing", {"ollama_source": "controller"}, "ollama_controller_dir"),
    ("controller-relative", {"ollama_source": "controller", "ollama_controller_dir": "releases/0.33.0"}, "ollama_controller_dir"),
    ("file-pinned", {"ollama_source": "controller", "ollama_controller_file": "/srv/o.tar.zst"}, None),
    ("port-zero", {"ollama_port": 0}, "ollama_port"),
    ("versions-keep-one", {"ollama_versions_keep": 1}, "ollama_versions_keep must be an integer from 2"),
    ("num-parallel-huge", {"ollama_num_parallel": "1e20"}, "ollama_num_parallel"),
    ("num-parallel-big", {"ollama_num_parallel": 100000}, "ollama_num_parallel must be an integer from 1 to 256"),
    ("models-dir-dotdot", {"ollama_models_dir": "/var/../home/x/models"}, "ollama_models_dir must be a normalised absolute path"),
    ("install-dir-system", {"ollama_install_dir": "/usr/.."}, "ollama_install_dir must be a normalised absolute path"),
    ("install-dir-usr", {"ollama_install_dir": "/usr"}, "ollama_install_dir must be a normalised absolute path"),
    ("port-high", {"ollama_port": 70000}, "ollama_port"),
    ("port-type", {"ollama_port": "http"}, "ollama_port"),
    ("keepalive", {"ollama_keep_alive": "5 minutes"}, "ollama_keep_alive"),
    ("models-relative", {"ollama_models_dir": "models"}, "ollama_models_dir"),
    ("models-home", {"ollama_models_dir": "/home/ollama/models"}, "ollama_models_dir"),
    ("install-root", {"ollama_install_dir": "/"}, "ollama_install_dir"),
    ("bin-link-relative", {"ollama_bin_link": "bin/ollama"}, "ollama_bin_link"),
    ("bind-port", {"ollama_bind_address": "0.0.0.0:11434"}, "ollama_bind_address"),
    ("bind-octet", {"ollama_bind_address": "10.0.0.300"}, "ollama_bind_address"),
    ("keep-zero", {"ollama_versions_keep": 0}, "ollama_versions_keep"),
    ("parallel-zero", {"ollama_num_parallel": 0}, "ollama_num_parallel"),
    ("timeout-zero", {"ollama_start_timeout": 0}, "ollama_start_timeout"),
    ("nofile-low", {"ollama_limit_nofile": 100}, "ollama_limit_nofile"),
    ("proxy-url", {"ollama_http_proxy": "proxy:3128"}, "ollama_http_proxy"),
    ("extra-env-name", {"ollama_extra_env": {"BAD-NAME": "x"}}, "ollama_extra_env"),
    ("extra-env-managed", {"ollama_extra_env": {"OLLAMA_HOST": "0.0.0.0"}}, "ollama_extra_env"),
    ("extra-env-newline", {"ollama_extra_env": {"OLLAMA_ORIGINS": "a\nb"}}, "ollama_extra_env"),
    ("extra-env-type", {"ollama_extra_env": "OLLAMA_DEBUG=1"}, "ollama_extra_env"),
]


RECORD_FAILURE = (
    "{{ outcomes | default({}) | combine({'%s': ([ansible_failed_result.msg | string]"
    " + (ansible_failed_result.results | default([]) | selectattr('failed', 'defined') | selectattr('failed')"
    " | map(attribute='msg') | list)) | join(' / ')}) }}"
)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("ollama-validate")
    out = work / "outcomes.json"
    plays = []
    for case_id, variables, _ in CASES:
        plays.append({
            "name": f"Case {case_id}",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {**PINS, **variables},
            "tasks": [{
                "name": "Validate",
                "block": [
                    {"name": "Run the validate entry point", "ansible.builtin.include_role": {"name": "ollama", "tasks_from": "validate"}},
                    {"name": "Record a pass", "ansible.builtin.set_fact": {"outcomes": "{{ outcomes | default({}) | combine({'%s': 'PASSED'}) }}" % case_id}},
                ],
                "rescue": [
                    {"name": "Record the failure", "ansible.builtin.set_fact": {"outcomes": RECORD_FAILURE % case_id}},
                ],
            }],
        })
    plays.append({"name": "Write the outcomes", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Write", "ansible.builtin.copy": {"content": "{{ outcomes | to_json }}", "dest": str(out), "mode": "0600"}}]})
    playbook = work / "validate.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={ROOT / '.venv/bin/python'}", str(playbook)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize(("case_id", "variables", "needle"), CASES, ids=[c[0] for c in CASES])
def test_validate(outcomes, case_id, variables, needle):
    result = outcomes[case_id]
    if needle is None:
        assert result == "PASSED", result
    else:
        assert result != "PASSED", f"{variables} was accepted"
        assert needle in result, f"failure does not name {needle}: {result}"
