"""The test hosts have no GPU: the nvidia_driver role must report that and change nothing."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "pkg",
    ["nvidia-open-580", "cuda-drivers-580", "nvidia-kernel-dkms", "nvidia-open-kernel-dkms",
     "nvidia-driver", "libcuda1", "nvidia-smi", "cuda-keyring"],
)
def test_no_nvidia_package_installed(host, pkg):
    assert not host.package(pkg).is_installed


def test_gpu_role_left_no_trace(host):
    assert not host.exists("nvidia-smi")
    assert not host.file("/etc/modprobe.d/blacklist-nouveau.conf").exists
    assert not host.file("/etc/apt/sources.list.d/nvidia-cuda.sources").exists
    assert "non-free" not in host.file("/etc/apt/sources.list").content_string


def test_required_gpu_fails_before_changing_anything(host):
    """nvidia_driver_required on a GPU-less host fails with a message naming the host, changed=0."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    name = host.backend.get_hostname()
    run = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", inventory, "-l", name,
         str(ROOT / "playbooks/gpu.yml"), "-e", "nvidia_driver_required=true"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")},
    )
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 2, output[-2000:]
    assert f"{name} has no NVIDIA GPU" in output
    assert "changed=0" in output
