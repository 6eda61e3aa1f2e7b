#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: detect NVIDIA GPUs from sysfs and return them as facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_driver_gpu_facts
short_description: Detect NVIDIA GPUs from sysfs
description:
  - Reads C(vendor), C(device) and C(class) of every PCI function under O(sysfs_pci_root).
  - A function counts as a GPU when its vendor is V(0x10de) (NVIDIA) and its PCI class is
    a display controller (base class V(0x03), that is VGA V(0x0300xx) or 3D V(0x0302xx)).
    NVIDIA audio (V(0x0403xx)), USB or bridge functions of the same card do not count.
  - Needs no package (no lspci); device names come from C(pci.ids) when that file exists.
  - Read-only, so it runs in check mode.
options:
  sysfs_pci_root:
    description: Directory holding one entry per PCI function.
    type: path
    default: /sys/bus/pci/devices
  pci_ids_paths:
    description: Candidate C(pci.ids) files used to name devices; the first readable one wins.
    type: list
    elements: path
    default: [/usr/share/misc/pci.ids, /usr/share/hwdata/pci.ids]
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Detect NVIDIA GPUs
  nvidia_driver_gpu_facts:
    sysfs_pci_root: /sys/bus/pci/devices
"""

RETURN = r"""
ansible_facts:
  description: Facts about NVIDIA GPUs.
  returned: always
  type: dict
  contains:
    nvidia_driver_gpu_present:
      description: At least one NVIDIA display/3D controller was found.
      type: bool
    nvidia_driver_gpu_count:
      description: Number of NVIDIA display/3D controller functions.
      type: int
    nvidia_driver_gpu_models:
      description: Sorted unique models, C(10de:<device>) followed by the pci.ids name when known.
      type: list
      elements: str
    nvidia_driver_gpus:
      description: One entry per GPU with C(address), C(vendor_id), C(device_id), C(pci_class), C(name).
      type: list
      elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

NVIDIA_VENDOR = "10de"
DISPLAY_BASE_CLASS = "03"


def _read_hex(path):
    """Return the lower-case hex value of a sysfs attribute without 0x, or None."""
    try:
        with open(path, "r") as handle:
            value = handle.read().strip().lower()
    except (IOError, OSError):
        return None
    if value.startswith("0x"):
        value = value[2:]
    return value or None


def load_nvidia_names(paths):
    """Map device id -> name for vendor 10de from the first readable pci.ids."""
    for path in paths:
        names = {}
        in_vendor = False
        try:
            with open(path, "r", errors="replace") as handle:
                for line in handle:
                    if not line.strip() or line.startswith("#"):
                        continue
                    if not line.startswith("\t"):
                        if in_vendor:
                            break
                        in_vendor = line[:4].lower() == NVIDIA_VENDOR
                        continue
                    if in_vendor and not line.startswith("\t\t"):
                        device, _, name = line.strip().partition(" ")
                        names[device.lower()] = name.strip()
        except (IOError, OSError):
            continue
        return names
    return {}


def scan(sysfs_pci_root, names=None):
    """Return the list of NVIDIA display/3D functions under sysfs_pci_root."""
    names = names or {}
    gpus = []
    try:
        entries = sorted(os.listdir(sysfs_pci_root))
    except (IOError, OSError):
        return gpus
    for address in entries:
        base = os.path.join(sysfs_pci_root, address)
        vendor = _read_hex(os.path.join(base, "vendor"))
        pci_class = _read_hex(os.path.join(base, "class"))
        if vendor != NVIDIA_VENDOR or not pci_class:
            continue
        # class is 24 bits: base class, subclass, prog-if (e.g. 030200).
        if pci_class.zfill(6)[:2] != DISPLAY_BASE_CLASS:
            continue
        device = _read_hex(os.path.join(base, "device")) or "unknown"
        gpus.append(
            {
                "address": address,
                "vendor_id": NVIDIA_VENDOR,
                "device_id": device,
                "pci_class": "0x" + pci_class.zfill(6),
                "name": names.get(device, ""),
            }
        )
    return gpus


def build_facts(gpus):
    models = sorted(
        {
            ("%s:%s %s" % (gpu["vendor_id"], gpu["device_id"], gpu["name"])).strip()
            for gpu in gpus
        }
    )
    return {
        "nvidia_driver_gpu_present": bool(gpus),
        "nvidia_driver_gpu_count": len(gpus),
        "nvidia_driver_gpu_models": models,
        "nvidia_driver_gpus": gpus,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sysfs_pci_root=dict(type="path", default="/sys/bus/pci/devices"),
            pci_ids_paths=dict(
                type="list",
                elements="path",
                default=["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"],
            ),
        ),
        supports_check_mode=True,
    )
    root = module.params["sysfs_pci_root"]
    if not os.path.isdir(root):
        module.warn("%s is not a directory: no PCI devices can be listed" % root)
    gpus = scan(root, load_nvidia_names(module.params["pci_ids_paths"]))
    module.exit_json(changed=False, ansible_facts=build_facts(gpus))


if __name__ == "__main__":
    main()
