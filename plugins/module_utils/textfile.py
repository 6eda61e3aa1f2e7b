# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files replaced whole or not at all: the one way this collection writes a file that another
program reads at any moment (node exporter's textfile collector, HAProxy's server-state file).

Stdlib only, no Ansible import: loaded by path by the node-side scripts (roles/ollama_metrics,
roles/haproxy's per-key export and server-state saver), imported by the haproxy_server_state module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import tempfile


def write_atomic(path, text, mode=0o644):
    """Replace path with text: a temporary file in the same directory (node exporter reads only
    *.prom, so it never sees the temporary one), flushed, then renamed over the old file."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
