#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the SSH connection this Ansible run came in on, read from the process tree."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: firewall_ssh_session
short_description: Find the SSH connection that runs this module
description:
  - Walks from the module's own process up through its ancestors and returns the first
    C(SSH_CONNECTION) found in a process environment (C(/proc/PID/environ)).
  - Works with and without become. Under C(sudo) the module's own environment no longer holds
    C(SSH_CONNECTION) (sudo resets it), but the login shell that sshd started still does; and
    an inventory's C(ansible_become=true) overrides a task's C(become=false), so reading the
    environment variable directly is not enough.
  - Read-only, so it runs in check mode.
options:
  proc_root:
    description: Where the process table is mounted.
    type: path
    default: /proc
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Read the address this SSH session comes from
  firewall_ssh_session:
  register: session
"""

RETURN = r"""
found:
  description: Whether an ancestor process holds C(SSH_CONNECTION).
  type: bool
  returned: always
client_address:
  description: The address the SSH connection comes from, as this host sees it.
  type: str
  returned: when found
client_port:
  description: The client's source port.
  type: int
  returned: when found
server_address:
  description: The host address the connection arrived at.
  type: str
  returned: when found
server_port:
  description: The port sshd accepted the connection on.
  type: int
  returned: when found
"""

import os

from ansible.module_utils.basic import AnsibleModule


def parent_of(proc_root, pid):
    """The parent PID from /proc/PID/stat (the field after the parenthesised command name)."""
    with open(os.path.join(proc_root, str(pid), "stat"), "rb") as handle:
        stat = handle.read()
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def ssh_connection(proc_root, pid):
    """SSH_CONNECTION of the nearest process, from `pid` upwards, that has one; "" if none."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            with open(os.path.join(proc_root, str(pid), "environ"), "rb") as handle:
                for item in handle.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        return item.split(b"=", 1)[1].decode("ascii", "replace")
            pid = parent_of(proc_root, pid)
        except (OSError, ValueError, IndexError):
            return ""
    return ""


def parse(value):
    parts = value.split()
    if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
        return {"found": False}
    return {"found": True, "client_address": parts[0], "client_port": int(parts[1]),
            "server_address": parts[2], "server_port": int(parts[3])}


def main():
    module = AnsibleModule(argument_spec=dict(proc_root=dict(type="path", default="/proc")), supports_check_mode=True)
    module.exit_json(changed=False, **parse(ssh_connection(module.params["proc_root"], os.getpid())))


if __name__ == "__main__":
    main()
