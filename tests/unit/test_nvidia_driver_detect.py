"""GPU detection of roles/nvidia_driver against fake sysfs trees, and the role's no-GPU behaviour.

The fact module is tested directly (scan, pci.ids names) and through the role: the whole role
runs on localhost aliases whose nvidia_driver_sysfs_pci_root points at a fake tree. Without a
GPU the role only reads, so those runs are real (no --check) and must report changed=0. Runs
that would reach the install path use --check and faked OS facts that fail the support check.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nvidia_driver"))
from harness import FIXTURES, local_host, run_playbook  # noqa: E402

MODULE_PATH = Path(__file__).resolve().parents[2] / "plugins/modules/nvidia_driver_gpu_facts.py"
spec = importlib.util.spec_from_file_location("nvidia_driver_gpu_facts", MODULE_PATH)
gpu_facts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_facts)

H200 = ("0000:19:00.0", "0x10de", "0x2335", "0x030200")  # 3D controller
A100 = ("0000:3b:00.0", "0x10DE", "0x20B0", "0x030200")  # upper-case hex as some kernels print
RTX = ("0000:65:00.0", "0x10de", "0x2204", "0x030000")  # VGA controller
NV_AUDIO = ("0000:65:00.1", "0x10de", "0x1aef", "0x040300")  # HDMI audio function of the RTX card
NV_USB = ("0000:65:00.2", "0x10de", "0x1aec", "0x0c0330")  # USB controller on the same card
AMD_GPU = ("0000:03:00.0", "0x1002", "0x740f", "0x030200")
ASPEED_VGA = ("0000:02:00.0", "0x1a03", "0x2000", "0x030000")  # BMC VGA found on most servers
INTEL_BRIDGE = ("0000:00:00.0", "0x8086", "0x09a2", "0x060000")


def make_tree(root, devices):
    root.mkdir(parents=True, exist_ok=True)
    for address, vendor, device, pci_class in devices:
        d = root / address
        d.mkdir()
        (d / "vendor").write_text(vendor + "\n")
        (d / "device").write_text(device + "\n")
        (d / "class").write_text(pci_class + "\n")
    return root


PCI_IDS = """\
# fake pci.ids
1002  Advanced Micro Devices, Inc. [AMD/ATI]
\t2335  Not an NVIDIA device
10de  NVIDIA Corporation
\t20b0  GA100 [A100 SXM4 40GB]
\t\t10de 134f  A100-SXM4-40GB
\t2335  GH100 [H200 SXM 141GB]
10df  Emulex Corporation
\t2204  Not an NVIDIA device either
"""


def test_two_nvidia_gpus_are_counted_and_other_functions_ignored(tmp_path):
    root = make_tree(tmp_path / "sys", [INTEL_BRIDGE, ASPEED_VGA, H200, RTX, NV_AUDIO, NV_USB])
    gpus = gpu_facts.scan(str(root))
    assert [g["address"] for g in gpus] == ["0000:19:00.0", "0000:65:00.0"]
    assert [g["device_id"] for g in gpus] == ["2335", "2204"]
    assert [g["pci_class"] for g in gpus] == ["0x030200", "0x030000"]


def test_no_device_at_all(tmp_path):
    facts = gpu_facts.build_facts(gpu_facts.scan(str(make_tree(tmp_path / "sys", []))))
    assert facts == {
        "nvidia_driver_gpu_present": False,
        "nvidia_driver_gpu_count": 0,
        "nvidia_driver_gpu_models": [],
        "nvidia_driver_gpus": [],
    }


def test_non_nvidia_gpus_do_not_count(tmp_path):
    root = make_tree(tmp_path / "sys", [AMD_GPU, ASPEED_VGA, INTEL_BRIDGE])
    assert gpu_facts.scan(str(root)) == []


def test_nvidia_audio_and_usb_functions_do_not_count(tmp_path):
    root = make_tree(tmp_path / "sys", [NV_AUDIO, NV_USB])
    assert gpu_facts.scan(str(root)) == []


def test_missing_sysfs_root_means_no_gpu(tmp_path):
    assert gpu_facts.scan(str(tmp_path / "absent")) == []


def test_unreadable_function_is_skipped(tmp_path):
    root = make_tree(tmp_path / "sys", [H200])
    (root / "0000:99:00.0").mkdir()  # a function without attributes
    assert len(gpu_facts.scan(str(root))) == 1


def test_names_come_from_the_nvidia_section_of_pci_ids(tmp_path):
    ids = tmp_path / "pci.ids"
    ids.write_text(PCI_IDS)
    names = gpu_facts.load_nvidia_names([str(tmp_path / "missing.ids"), str(ids)])
    assert names == {"20b0": "GA100 [A100 SXM4 40GB]", "2335": "GH100 [H200 SXM 141GB]"}
    root = make_tree(tmp_path / "sys", [H200, A100, RTX])
    facts = gpu_facts.build_facts(gpu_facts.scan(str(root), names))
    assert facts["nvidia_driver_gpu_count"] == 3
    assert facts["nvidia_driver_gpu_models"] == [
        "10de:20b0 GA100 [A100 SXM4 40GB]",
        "10de:2204",
        "10de:2335 GH100 [H200 SXM 141GB]",
    ]


def test_same_model_twice_is_one_model_two_gpus(tmp_path):
    second = ("0000:1a:00.0",) + H200[1:]
    facts = gpu_facts.build_facts(gpu_facts.scan(str(make_tree(tmp_path / "sys", [H200, second]))))
    assert facts["nvidia_driver_gpu_count"] == 2
    assert facts["nvidia_driver_gpu_models"] == ["10de:2335"]


# --- the role on fake trees -------------------------------------------------------------

RHEL10 = {
    "ansible_distribution": "RedHat", "ansible_distribution_version": "10.0",
    "ansible_distribution_major_version": "10", "ansible_os_family": "RedHat",
    "ansible_architecture": "x86_64", "ansible_kernel": "6.12.0-55.9.1.el10_0.x86_64",
}
CENTOS7 = {**RHEL10, "ansible_distribution": "CentOS", "ansible_distribution_version": "7.9.2009",
           "ansible_distribution_major_version": "7", "ansible_kernel": "3.10.0-1160.el7.x86_64"}
DEBIAN12_S390X = {**RHEL10, "ansible_distribution": "Debian", "ansible_distribution_version": "12.11",
                  "ansible_distribution_major_version": "12", "ansible_os_family": "Debian",
                  "ansible_architecture": "s390x", "ansible_kernel": "6.1.0-37-s390x"}


def task_results(result, host):
    """task name (without the "role : " prefix) -> this host's result, over every play and task."""
    out = {}
    for play in result["plays"]:
        for task in play["tasks"]:
            if host in task["hosts"]:
                out[task["task"]["name"].split(" : ", 1)[-1]] = task["hosts"][host]
    return out


def failure_message(result, host):
    """Messages of the failed tasks (and failed loop items) of one host."""
    msgs = []
    for res in task_results(result, host).values():
        if res.get("failed"):
            msgs.append(str(res.get("msg", "")))
            msgs.extend(str(item.get("msg", "")) for item in res.get("results", []) if item.get("failed"))
    return " ".join(msgs)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Real runs (no --check): no GPU on any of these hosts, or a validation failure first."""
    tmp = tmp_path_factory.mktemp("live")
    empty = str(make_tree(tmp / "empty", []))
    others = str(make_tree(tmp / "others", [ASPEED_VGA, AMD_GPU, NV_AUDIO]))
    two = str(make_tree(tmp / "two", [H200, RTX, NV_AUDIO]))
    hosts = {
        "nogpu": local_host(nvidia_driver_sysfs_pci_root=empty),
        "other_vendors_and_nv_audio": local_host(nvidia_driver_sysfs_pci_root=others),
        "required_nogpu": local_host(nvidia_driver_sysfs_pci_root=empty, nvidia_driver_required=True),
        "bad_branch": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_branch="58O"),
        "bad_version": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_version="590.44.01"),
        "bad_repo_url": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_repo_base_url="mirror/cuda"),
        "bad_choice": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_kernel_modules="closed"),
    }
    proc, result = run_playbook(FIXTURES / "role_main.yml", {"all": {"hosts": hosts}}, tmp)
    return proc, result


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """--check runs that reach install.yml (GPU present or forced) and must stop at the OS check."""
    tmp = tmp_path_factory.mktemp("checked")
    empty = str(make_tree(tmp / "empty", []))
    two = str(make_tree(tmp / "two", [H200, RTX, NV_AUDIO, INTEL_BRIDGE]))
    hosts = {
        "gpu_rhel10": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_reboot=False, **RHEL10),
        "gpu_centos7": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_reboot=False, **CENTOS7),
        "forced_s390x": local_host(nvidia_driver_sysfs_pci_root=empty, nvidia_driver_force_install=True,
                                   nvidia_driver_reboot=False, **DEBIAN12_S390X),
        "forced_but_required": local_host(nvidia_driver_sysfs_pci_root=empty, nvidia_driver_force_install=True,
                                          nvidia_driver_required=True, **RHEL10),
    }
    return run_playbook(FIXTURES / "role_main.yml", {"all": {"hosts": hosts}}, tmp, "--check")


@pytest.mark.parametrize("host", ["nogpu", "other_vendors_and_nv_audio"])
def test_no_gpu_reports_and_changes_nothing(live, host):
    _, result = live
    stats = result["stats"][host]
    assert (stats["failures"], stats["changed"]) == (0, 0)
    tasks = task_results(result, host)
    assert tasks["Read NVIDIA display and 3D controllers from sysfs"]["ansible_facts"]["nvidia_driver_gpu_count"] == 0
    assert "No NVIDIA GPU found" in tasks["Report detected NVIDIA GPUs"]["msg"]
    assert tasks["Install and verify the NVIDIA driver"].get("skipped") is True


def test_required_without_gpu_fails_before_any_change(live):
    _, result = live
    assert result["stats"]["required_nogpu"]["failures"] == 1
    assert result["stats"]["required_nogpu"]["changed"] == 0
    msg = failure_message(result, "required_nogpu")
    assert "nvidia_driver_required is true but required_nogpu has no NVIDIA GPU" in msg
    assert "Nothing was changed" in msg


@pytest.mark.parametrize(
    ("host", "text"),
    [
        ("bad_branch", "nvidia_driver_branch must be a driver branch"),
        ("bad_version", "nvidia_driver_version must be empty or an exact driver version inside nvidia_driver_branch"),
        ("bad_repo_url", "nvidia_driver_repo_base_url must be an http(s):// or file:// URL"),
        ("bad_choice", "nvidia_driver_kernel_modules"),
    ],
)
def test_invalid_variables_fail_before_detection(live, host, text):
    _, result = live
    assert result["stats"][host]["failures"] == 1
    assert result["stats"][host]["changed"] == 0
    assert text in failure_message(result, host)
    assert "Read NVIDIA display and 3D controllers from sysfs" not in task_results(result, host)


def test_detected_gpus_reach_the_os_check_and_future_rhel_is_refused(checked):
    proc, result = checked
    tasks = task_results(result, "gpu_rhel10")
    facts = tasks["Read NVIDIA display and 3D controllers from sysfs"]["ansible_facts"]
    assert facts["nvidia_driver_gpu_count"] == 2
    assert [g["address"] for g in facts["nvidia_driver_gpus"]] == ["0000:19:00.0", "0000:65:00.0"]
    assert "not in the tested matrix" in failure_message(result, "gpu_rhel10"), proc.stdout[-2000:]
    assert "Blacklist nouveau" not in tasks


def test_end_of_life_os_is_refused(checked):
    _, result = checked
    assert "this OS is end of life" in failure_message(result, "gpu_centos7")


def test_forced_install_on_unknown_architecture_is_refused(checked):
    _, result = checked
    tasks = task_results(result, "forced_s390x")
    assert "installing anyway" in tasks["Report detected NVIDIA GPUs"]["msg"]
    assert "architecture s390x has no CUDA repository" in failure_message(result, "forced_s390x")


def test_required_wins_over_force(checked):
    _, result = checked
    assert "nvidia_driver_required is true" in failure_message(result, "forced_but_required")
    assert "Resolve the install plan" not in task_results(result, "forced_but_required")


def test_checked_runs_change_nothing(checked):
    _, result = checked
    assert {h: s["changed"] for h, s in result["stats"].items()} == dict.fromkeys(result["stats"], 0)
    assert all(s["failures"] == 1 for s in result["stats"].values())


UBUNTU2404 = {**RHEL10, "ansible_distribution": "Ubuntu", "ansible_distribution_version": "24.04",
              "ansible_distribution_major_version": "24", "ansible_os_family": "Debian",
              "ansible_kernel": "6.8.0-60-generic"}


@pytest.fixture(scope="module")
def secure_boot(tmp_path_factory):
    """--check run on a supported OS with a GPU, where `mokutil --sb-state` (a fake on PATH) says enabled."""
    tmp = tmp_path_factory.mktemp("secureboot")
    two = str(make_tree(tmp / "two", [H200, RTX]))
    fake = tmp / "bin"
    fake.mkdir()
    (fake / "mokutil").write_text("#!/bin/sh\n[ \"$1\" = --sb-state ] && echo 'SecureBoot enabled'\n")
    (fake / "mokutil").chmod(0o755)
    hosts = {"gpu_ubuntu_sb": local_host(nvidia_driver_sysfs_pci_root=two, nvidia_driver_reboot=False, **UBUNTU2404)}
    return run_playbook(FIXTURES / "role_main.yml", {"all": {"hosts": hosts}}, tmp, "--check",
                        env_extra={"PATH": "%s:%s" % (fake, os.environ["PATH"])})


def test_secure_boot_stops_the_role_before_anything_is_installed(secure_boot):
    proc, result = secure_boot
    tasks = task_results(result, "gpu_ubuntu_sb")
    sb = tasks["Read the Secure Boot state"]
    assert sb["stdout"] == "SecureBoot enabled" and sb["changed"] is False  # read-only, ran in check mode
    msg = failure_message(result, "gpu_ubuntu_sb")
    assert "Secure Boot is enabled on gpu_ubuntu_sb" in msg, proc.stdout[-2000:]
    assert "nvidia_driver_secure_boot_mok=true" in msg and "Nothing was installed" in msg
    assert "Blacklist nouveau" not in tasks and result["stats"]["gpu_ubuntu_sb"]["changed"] == 0


def test_module_runs_standalone(tmp_path):
    """The module as Ansible runs it: JSON arguments in, facts out."""
    root = make_tree(tmp_path / "sys", [H200, NV_AUDIO])
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"sysfs_pci_root": str(root), "pci_ids_paths": []}}))
    out = subprocess.run([sys.executable, str(MODULE_PATH), str(args)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["changed"] is False
    assert result["ansible_facts"]["nvidia_driver_gpu_count"] == 1
    assert result["ansible_facts"]["nvidia_driver_gpu_present"] is True
