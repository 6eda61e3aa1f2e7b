#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Set a server's administrative state through HAProxy's runtime API (the admin socket) and wait
for what that state promises. Stdlib only, Python 3.6+, runs on the load balancer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: haproxy_server_state
short_description: Drain, hold in maintenance or re-enable one HAProxy server, and wait for the result
description:
  - Reads the server's administrative state (C(show servers state)) and sends
    C(set server <backend>/<server> state drain|maint|ready) only when it differs, so the result's
    C(changed) is honest.
  - With C(wait), waits until the state holds - C(drain) and C(maint) until the server has no
    current B(and no queued) sessions (C(scur) and C(qcur) of C(show stat); community.general.haproxy
    checks C(scur) only), C(ready) until its status is UP (its health checks pass again) - and
    fails after C(timeout) seconds with the figures it last saw.
  - In check mode it reports what it would change and sends nothing.
options:
  socket:
    description: HAProxy's admin-level runtime socket.
    type: path
    default: /run/haproxy/admin.sock
  backend:
    description: Backend that holds the server.
    type: str
    required: true
  server:
    description: Server name in that backend.
    type: str
    required: true
  state:
    description: drain (no new requests, in-flight ones finish), maint (no traffic, no health checks), ready.
    type: str
    required: true
    choices: [drain, maint, ready]
  wait:
    description: Wait until the state holds (see above).
    type: bool
    default: false
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 120
  state_file:
    description:
      - HAProxy's server-state file (C(server-state-file) of its global section). After a change,
        every server's state is saved there at once, so a restart or reboot of the load balancer
        starts with it (the role haproxy also saves it on every reload and stop). Unset, nothing
        is saved.
    type: path
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Drain lab-node1 on this load balancer and wait until nothing is in flight or queued
  ollama_fleet.fleet.haproxy_server_state:
    socket: /run/haproxy/admin.sock
    backend: ollama_nodes
    server: lab-node1
    state: drain
    wait: true
    timeout: 300
    state_file: /var/lib/haproxy/server-state

- name: Put it back
  ollama_fleet.fleet.haproxy_server_state:
    socket: /run/haproxy/admin.sock
    backend: ollama_nodes
    server: lab-node1
    state: ready
"""

RETURN = r"""
before:
  description: Status of the server in C(show stat) before the change (UP, DOWN, DRAIN, MAINT...).
  returned: always
  type: str
status:
  description: Its status when the module returned.
  returned: always
  type: str
waited_s:
  description: Seconds spent waiting.
  returned: always
  type: float
sessions:
  description: Current and queued sessions (scur, qcur) when the module returned.
  returned: always
  type: dict
saved:
  description: Whether the server states were saved to C(state_file) after the change.
  returned: always
  type: bool
"""

import csv
import io
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ollama_fleet.fleet.plugins.module_utils.haproxy_runtime import RuntimeApiError, ask, save_server_states
from ansible_collections.ollama_fleet.fleet.plugins.module_utils.textfile import write_atomic

# srv_admin_state bits of `show servers state` (HAProxy's SRV_ADMF_*): forced, inherited,
# config, resolver and health maintenance; forced and inherited drain.
MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
FMAINT = 0x01
FDRAIN = 0x08


def stat_row(path, backend, server):
    """The server's `show stat` row (status, scur, qcur...) or None."""
    text = ask(path, "show stat").lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    return None


def admin_state(path, backend, server):
    """srv_admin_state of the server (an int of SRV_ADMF_* bits) or None."""
    lines = ask(path, "show servers state %s" % backend).splitlines()
    header = next((line.lstrip("# ").split() for line in lines if line.startswith("# be_id")), None)
    if not header:
        return None
    for line in lines:
        if not line or line.startswith("#") or line.strip() == "1":
            continue
        fields = dict(zip(header, line.split()))
        if fields.get("srv_name") == server:
            return int(fields.get("srv_admin_state", "0"))
    return None


def already(state, admin):
    if state == "maint":
        return bool(admin & FMAINT)
    if state == "drain":
        return bool(admin & FDRAIN) and not admin & MAINT_BITS
    return not admin & (FMAINT | FDRAIN)


def holds(state, row):
    if row is None:  # unknown (socket away during a reload): keep waiting
        return False
    if state == "ready":
        return row.get("status", "").startswith("UP")
    return int(row.get("scur") or 0) == 0 and int(row.get("qcur") or 0) == 0


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            backend=dict(type="str", required=True),
            server=dict(type="str", required=True),
            state=dict(type="str", required=True, choices=["drain", "maint", "ready"]),
            wait=dict(type="bool", default=False),
            timeout=dict(type="int", default=120),
            state_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    where = "%s/%s" % (p["backend"], p["server"])
    try:
        row = stat_row(p["socket"], p["backend"], p["server"])
        admin = admin_state(p["socket"], p["backend"], p["server"])
        if row is None or admin is None:
            module.fail_json(msg="HAProxy (%s) has no server %s" % (p["socket"], where))
        before = row.get("status", "?")
        changed = not already(p["state"], admin)
        saved = False
        if changed and not module.check_mode:
            answer = ask(p["socket"], "set server %s state %s" % (where, p["state"])).strip()
            if answer:
                module.fail_json(msg="HAProxy refused 'set server %s state %s': %s" % (where, p["state"], answer))
            if p["state_file"]:
                save_server_states(p["socket"], p["state_file"], write_atomic)
                saved = True
        started = time.monotonic()
        if p["wait"] and not module.check_mode:
            while not holds(p["state"], row):
                if time.monotonic() - started > p["timeout"]:
                    row = row or {}
                    module.fail_json(
                        msg="%s: not %s after %ss (status %s, %s current and %s queued sessions, last check %s)" % (
                            where, "UP" if p["state"] == "ready" else "idle", p["timeout"], row.get("status", "?"),
                            row.get("scur", "?"), row.get("qcur", "?"), row.get("check_status", "?")),
                        changed=changed, before=before)
                time.sleep(0.25)
                try:
                    row = stat_row(p["socket"], p["backend"], p["server"])
                except RuntimeApiError:
                    row = None  # the socket is briefly away while a reload replaces the workers
    except (RuntimeApiError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=changed, before=before, status=(row or {}).get("status", "?"), waited_s=round(time.monotonic() - started, 2),
        sessions={"scur": int((row or {}).get("scur") or 0), "qcur": int((row or {}).get("qcur") or 0)},
        saved=saved,
    )


if __name__ == "__main__":
    main()
