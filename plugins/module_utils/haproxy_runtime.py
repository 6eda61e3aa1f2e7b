# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API (the admin socket): the one way this collection talks to it.

Stdlib only, no Ansible import: the haproxy_server_state module imports it, and the front's
per-key metrics script (roles/haproxy/files/haproxy_key_metrics.py) loads it by path.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

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
