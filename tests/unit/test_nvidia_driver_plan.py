"""Per-distro install plan of roles/nvidia_driver, resolved without those operating systems.

tests/unit/nvidia_driver/resolve_plan.yml runs the role's tasks/resolve.yml (pure set_fact) on
localhost aliases whose inventory variables fake the OS facts, once for all hosts, and writes each
resolved plan as JSON. Every plan is compared with the table below.
"""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nvidia_driver"))
from harness import FIXTURES, local_host, run_playbook  # noqa: E402
FLAVOUR = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+)?([+~][A-Za-z0-9.]+)?-")
CUDA = "https://developer.download.nvidia.com/compute/cuda/repos"
EPEL = "https://dl.fedoraproject.org/pub/epel"


def facts(distribution, version, family, kernel, arch="x86_64"):
    return {
        "ansible_distribution": distribution,
        "ansible_distribution_version": version,
        "ansible_distribution_major_version": version.split(".")[0],
        "ansible_os_family": family,
        "ansible_architecture": arch,
        "ansible_kernel": kernel,
    }


UBUNTU_K = "6.8.0-60-generic"
DEBIAN12_K = "6.1.0-37-amd64"
DEBIAN13_K = "6.12.48+deb13-amd64"
EL8_K = "4.18.0-553.el8_10.x86_64"
EL9_K = "5.14.0-570.12.1.el9_6.x86_64"
EL9_ARM_K = "5.14.0-570.12.1.el9_6.aarch64"
EL10_K = "6.12.0-55.9.1.el10_0.x86_64"
EL7_K = "3.10.0-1160.el7.x86_64"

# host -> (facts, role variables)
HOSTS = {
    "ubuntu2004": (facts("Ubuntu", "20.04", "Debian", "5.4.0-216-generic"), {}),
    "ubuntu2204": (facts("Ubuntu", "22.04", "Debian", "5.15.0-140-generic"), {}),
    "ubuntu2404": (facts("Ubuntu", "24.04", "Debian", UBUNTU_K), {}),
    "ubuntu2404_cuda_proprietary": (
        facts("Ubuntu", "24.04", "Debian", UBUNTU_K),
        {"nvidia_driver_source": "cuda", "nvidia_driver_kernel_modules": "proprietary"},
    ),
    "ubuntu2404_pinned": (
        facts("Ubuntu", "24.04", "Debian", UBUNTU_K),
        {"nvidia_driver_version": "580.95.05", "nvidia_driver_install_kernel_headers": False},
    ),
    "ubuntu2604_future": (facts("Ubuntu", "26.04", "Debian", "7.0.0-10-generic"), {}),
    "ubuntu2404_aws_proprietary": (facts("Ubuntu", "24.04", "Debian", "6.8.0-1029-aws"),
                                   {"nvidia_driver_kernel_modules": "proprietary"}),
    "debian12_cloud": (facts("Debian", "12.11", "Debian", "6.1.0-37-cloud-amd64"), {}),
    "debian12": (facts("Debian", "12.11", "Debian", DEBIAN12_K), {}),
    "debian12_mirror": (
        facts("Debian", "12.11", "Debian", DEBIAN12_K),
        {
            "nvidia_driver_repo_base_url": "https://mirror.example.internal/nvidia/cuda/repos/",
            "nvidia_driver_repo_key_url": "https://mirror.example.internal/keys/nvidia.pub",
        },
    ),
    "debian12_distro_proprietary": (
        facts("Debian", "12.11", "Debian", DEBIAN12_K),
        {"nvidia_driver_source": "distro", "nvidia_driver_kernel_modules": "proprietary"},
    ),
    "debian13": (facts("Debian", "13.1", "Debian", DEBIAN13_K), {}),
    "debian13_distro": (facts("Debian", "13.1", "Debian", DEBIAN13_K), {"nvidia_driver_source": "distro"}),
    "debian13_norepos": (facts("Debian", "13.1", "Debian", DEBIAN13_K), {"nvidia_driver_add_repos": False}),
    "debian14_future": (facts("Debian", "14.0", "Debian", "6.16.0-1-amd64"), {}),
    "rocky8": (facts("Rocky", "8.10", "RedHat", EL8_K), {}),
    "alma9": (facts("AlmaLinux", "9.6", "RedHat", EL9_K), {}),
    "rhel9_arm_proprietary_pinned": (
        facts("RedHat", "9.6", "RedHat", EL9_ARM_K, arch="aarch64"),
        {"nvidia_driver_kernel_modules": "proprietary", "nvidia_driver_version": "580.95.05"},
    ),
    "rhel10_future": (facts("RedHat", "10.0", "RedHat", EL10_K), {}),
    "centos7_eol": (facts("CentOS", "7.9.2009", "RedHat", EL7_K), {}),
    "unknown_s390x": (facts("Ubuntu", "24.04", "Debian", UBUNTU_K, arch="s390x"), {}),
    "unknown_archlinux": (facts("Archlinux", "2025.06", "Archlinux", "6.15.2-arch1-1"), {}),
}


def apt(vars_file, source, packages, repo_dir=None, key=None, *, tested=True, branch="580",
        extra=(), headers=UBUNTU_K, components=(), repo_url=None, key_url=None, repo=None):
    url = repo_url or (f"{CUDA}/{repo_dir}/x86_64/" if repo_dir else None)
    return {
        "vars_file": vars_file,
        "tested": tested,
        "eol": False,
        "supported": tested,
        "package_manager": "apt",
        "source": source,
        "repo": {
            "enabled": source == "cuda" if repo is None else repo,
            "id": "nvidia-cuda",
            **({"url": url, "key_url": key_url or f"{url}{key}"} if url else {}),
        },
        "debian_components": list(components),
        "epel_enabled": False,
        "module_stream": "",
        "packages": packages,
        "extra_packages": list(extra),
        # the running kernel's headers, and the metapackage of its flavour (follows kernel updates)
        "headers_packages": [f"linux-headers-{headers}", "linux-headers-" + FLAVOUR.sub("", headers)] if headers else [],
        "expected_branch": branch,
        "initramfs": "update-initramfs",
    }


def dnf(vars_file, repo_dir, key, packages, stream, kernel, *, arch="x86_64", tested=True, eol=False):
    url = f"{CUDA}/{repo_dir}/{arch}/"
    major = repo_dir.removeprefix("rhel")
    return {
        "vars_file": vars_file,
        "tested": tested,
        "eol": eol,
        "supported": tested and not eol,
        "package_manager": "dnf",
        "source": "cuda",
        "repo": {"enabled": True, "id": f"cuda-{repo_dir}-{arch}", "url": url, "key_url": url + key},
        "debian_components": [],
        "epel_enabled": True,
        "epel_url": f"{EPEL}/{major}/Everything/$basearch/",
        "epel_key_url": f"{EPEL}/RPM-GPG-KEY-EPEL-{major}",
        "module_stream": stream,
        "packages": packages,
        "extra_packages": ["dkms"],
        "headers_packages": [f"kernel-devel-{kernel}", f"kernel-headers-{kernel}", "kernel-devel"],
        "expected_branch": "580",
        "initramfs": "dracut",
    }


NONFREE = ("contrib", "non-free", "non-free-firmware")

EXPECTED = {
    "ubuntu2004": apt("Ubuntu-20.yml", "distro", ["nvidia-headless-580-server-open", "nvidia-utils-580-server"], headers="5.4.0-216-generic"),
    "ubuntu2204": apt("Ubuntu-22.yml", "distro", ["nvidia-headless-580-server-open", "nvidia-utils-580-server"], headers="5.15.0-140-generic"),
    "ubuntu2404": apt("Ubuntu-24.yml", "distro", ["nvidia-headless-580-server-open", "nvidia-utils-580-server"]),
    "ubuntu2404_cuda_proprietary": apt("Ubuntu-24.yml", "cuda", ["cuda-drivers-580"], "ubuntu2404", "3bf863cc.pub"),
    "ubuntu2404_pinned": apt("Ubuntu-24.yml", "distro", ["nvidia-headless-580-server-open=580.95.05*",
                                                     "nvidia-utils-580-server=580.95.05*"], headers=None),
    # Not in the tested matrix: resolved best effort (newest known layout), refused by install.yml
    # unless nvidia_driver_allow_unsupported_os is true.
    "ubuntu2604_future": apt("Ubuntu.yml", "distro", ["nvidia-headless-580-server-open", "nvidia-utils-580-server"], tested=False,
                             headers="7.0.0-10-generic"),
    "ubuntu2404_aws_proprietary": apt("Ubuntu-24.yml", "distro", ["nvidia-headless-580-server", "nvidia-utils-580-server"],
                                      headers="6.8.0-1029-aws"),
    "debian12_cloud": apt("Debian-12.yml", "cuda", ["nvidia-open-580"], "debian12", "3bf863cc.pub",
                          headers="6.1.0-37-cloud-amd64", components=NONFREE),
    "debian12": apt("Debian-12.yml", "cuda", ["nvidia-open-580"], "debian12", "3bf863cc.pub",
                    headers=DEBIAN12_K, components=NONFREE),
    "debian12_mirror": apt("Debian-12.yml", "cuda", ["nvidia-open-580"], headers=DEBIAN12_K, components=NONFREE,
                           repo_url="https://mirror.example.internal/nvidia/cuda/repos/debian12/x86_64/",
                           key_url="https://mirror.example.internal/keys/nvidia.pub"),
    "debian12_distro_proprietary": apt("Debian-12.yml", "distro", ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1"],
                                       branch="535", extra=["nvidia-persistenced"], headers=DEBIAN12_K,
                                       components=NONFREE),
    "debian13": apt("Debian-13.yml", "cuda", ["nvidia-open-580"], "debian13", "8793F200.pub",
                    headers=DEBIAN13_K, components=NONFREE),
    "debian13_distro": apt("Debian-13.yml", "distro", ["nvidia-open-kernel-dkms", "nvidia-smi", "libcuda1"],
                           branch="550", extra=["nvidia-persistenced"], headers=DEBIAN13_K, components=NONFREE),
    "debian13_norepos": apt("Debian-13.yml", "cuda", ["nvidia-open-580"], "debian13", "8793F200.pub",
                            headers=DEBIAN13_K, repo=False),
    "debian14_future": apt("Debian.yml", "cuda", ["nvidia-open-580"], "debian14", "8793F200.pub", tested=False,
                           headers="6.16.0-1-amd64", components=NONFREE),
    "rocky8": dnf("RedHat-8.yml", "rhel8", "D42D0685.pub", ["nvidia-open"], "nvidia-driver:580-open", EL8_K),
    "alma9": dnf("RedHat-9.yml", "rhel9", "D42D0685.pub", ["nvidia-open"], "nvidia-driver:580-open", EL9_K),
    "rhel9_arm_proprietary_pinned": dnf("RedHat-9.yml", "rhel9", "D42D0685.pub", ["cuda-drivers-580.95.05"],
                                        "nvidia-driver:580-dkms", EL9_ARM_K, arch="sbsa"),
    # '10' < '8' as strings: a string comparison would call RHEL 10 end of life and use module streams.
    "rhel10_future": dnf("RedHat.yml", "rhel10", "CDF6BA43.pub", ["nvidia-open-580.*"], "", EL10_K, tested=False),
    "centos7_eol": dnf("RedHat-7.yml", "rhel7", "D42D0685.pub", ["nvidia-driver-branch-580", "cuda-drivers"], "",
                       EL7_K, tested=False, eol=True),
}


def project(plan):
    """The plan fields the table pins down."""
    repo = {"enabled": plan["repo"]["enabled"], "id": plan["repo"]["id"]}
    if plan["repo"]["enabled"] or plan["source"] == "cuda":
        repo.update(url=plan["repo"]["url"], key_url=plan["repo"]["key_url"])
    out = {
        "vars_file": plan["vars_file"],
        "tested": plan["tested"],
        "eol": plan["eol"],
        "supported": plan["supported"],
        "package_manager": plan["package_manager"],
        "source": plan["source"],
        "repo": repo,
        "debian_components": plan["debian_components"],
        "epel_enabled": plan["epel"]["enabled"],
        "module_stream": plan["module_stream"],
        "packages": plan["packages"],
        "extra_packages": plan["extra_packages"],
        "headers_packages": plan["headers_packages"],
        "expected_branch": plan["expected_branch"],
        "initramfs": plan["initramfs"],
    }
    if plan["epel"]["enabled"]:
        out.update(epel_url=plan["epel"]["url"], epel_key_url=plan["epel"]["key_url"])
    return out


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("plans")
    hosts = {name: local_host(**host_facts, **role_vars) for name, (host_facts, role_vars) in HOSTS.items()}
    inventory = {"all": {"hosts": hosts, "vars": {"plan_dir": str(tmp_path)}}}
    proc, result = run_playbook(FIXTURES / "resolve_plan.yml", inventory, tmp_path)
    plans = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json") if p.name != "inventory.json"}
    return proc, result, plans


@pytest.mark.parametrize("host", sorted(EXPECTED))
def test_plan_matches_table(resolved, host):
    _, _, plans = resolved
    assert host in plans, f"no plan written for {host}"
    assert project(plans[host]) == EXPECTED[host]


def test_every_host_is_in_the_table():
    assert set(HOSTS) - set(EXPECTED) == {"unknown_s390x", "unknown_archlinux"}


def test_unknown_architecture_resolves_no_repository_dir(resolved):
    _, _, plans = resolved
    # install.yml refuses an empty arch_dir with a clear message before changing anything.
    assert plans["unknown_s390x"]["arch_dir"] == ""
    assert plans["ubuntu2204"]["arch_dir"] == "x86_64"


def test_unknown_os_family_fails_clearly(resolved):
    proc, result, plans = resolved
    failed = {h for h, s in result["stats"].items() if s["failures"] or s["unreachable"]}
    assert failed == {"unknown_archlinux"}, proc.stdout[-3000:]
    assert "unknown_archlinux" not in plans
    assert "Archlinux 2025.06 (os_family Archlinux) is not supported" in proc.stdout


def test_resolving_changes_nothing_but_the_dump(resolved):
    _, result, _ = resolved
    # The only change per host is the JSON file the fixture writes on the controller.
    changed = {h: s["changed"] for h, s in result["stats"].items() if h != "unknown_archlinux"}
    assert set(changed.values()) == {1}, changed


@pytest.mark.parametrize("host, meta", [
    ("ubuntu2404", "linux-headers-generic"), ("ubuntu2404_aws_proprietary", "linux-headers-aws"),
    ("debian12", "linux-headers-amd64"), ("debian12_cloud", "linux-headers-cloud-amd64"),
    ("debian13", "linux-headers-amd64"), ("alma9", "kernel-devel"),
])
def test_headers_follow_kernel_updates(resolved, host, meta):
    """DKMS rebuilds the module for each new kernel only if that kernel's headers arrive with it."""
    _, _, plans = resolved
    assert meta in plans[host]["headers_packages"]
