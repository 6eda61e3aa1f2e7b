#!/usr/bin/env python3
"""Save HAProxy's server states (role haproxy, ollama-fleet) into the file the next workers load.

Run by the haproxy unit on every reload (before the workers are replaced) and every stop (a
restart, a shutdown or a reboot), so what an operator or a roll set at run time (a node drained,
in maintenance, put back) is what HAProxy starts with. Without a running HAProxy there is nothing
to save; when the states cannot be read the old file is removed, never left stale. Never fails the
reload or the stop. Stdlib only.

    haproxy_save_state.py <admin socket> <state file>
"""

from __future__ import annotations

import os
import sys

# The shared files (plugins/module_utils, stdlib only): installed next to this script by the role,
# else found in the repository this script lives in.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "plugins", "module_utils"))]
import haproxy_runtime  # noqa: E402
import textfile  # noqa: E402


def main(argv: list[str]) -> int:
    socket_path, state_file = argv
    if not os.path.exists(socket_path):
        return 0
    try:
        haproxy_runtime.save_server_states(socket_path, state_file, textfile.write_atomic)
    except (haproxy_runtime.RuntimeApiError, OSError) as exc:
        print("haproxy-save-state: %s; the state file %s was removed: every server starts as configured"
              % (exc, state_file), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
