# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API (the admin socket): the one way this collection talks to it.

Stdlib only, no Ansible import: the haproxy_server_state module imports it, and the front's
scripts (roles/haproxy/files: the per-key metrics, the server-state saver) load it by path.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import socket


class RuntimeApiError(Exception):
    pass


def ask(path, command, timeout=5.0):
    """The answer to one runtime API command; the socket closes after the answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(command.encode("ascii") + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except (OSError, socket.timeout) as exc:
        raise RuntimeApiError("HAProxy runtime socket %s: %s" % (path, exc))
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace")


def save_server_states(path, state_file, write):
    """Write HAProxy's server states (``show servers state``: drain, maint, weights) to the file
    that ``load-server-state-from-file`` reads at the next start or reload, with write(file, text)
    (textfile.write_atomic). When they cannot be read, the old file is removed and the error
    raised: a stale file would bring back states an operator has since changed (a node put back in
    rotation would start in maintenance again); without a file every server starts as configured.
    """
    try:
        text = ask(path, "show servers state")
        if "# be_id" not in text:
            raise RuntimeApiError("HAProxy runtime socket %s: 'show servers state' answered %r" % (path, text[:200]))
        write(state_file, text)
    except (RuntimeApiError, OSError):
        if os.path.exists(state_file):
            os.unlink(state_file)
        raise
