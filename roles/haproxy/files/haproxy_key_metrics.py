#!/usr/bin/env python3
"""Per-key usage of the front (role haproxy, ollama-fleet), for node exporter's textfile collector.

Reads HAProxy's per_key stick-table (``show table`` on the admin socket) and writes, per key owner,
the requests, bytes received and sent, requests in flight and refusals by reason; atomically, so
node exporter never reads half a file. The table holds owner names and counters only: never a key,
never a prompt. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

# The stick-table's general-purpose counters, by index (the order the front's rules count them in).
REASONS = ("field", "model", "in_flight", "rate", "body", "endpoint")
ROW = re.compile(r"^0x[0-9a-f]+: key=(?P<owner>[A-Za-z0-9._-]+) (?P<rest>.*)$")
PAIR = re.compile(r"([a-z_]+[0-9]*(?:\([0-9]+\))?)=([0-9]+)")


# The shared files (plugins/module_utils, stdlib only): installed next to this script by the role,
# else found in the repository this script lives in.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "plugins", "module_utils"))]
import haproxy_runtime  # noqa: E402
import textfile  # noqa: E402


def read_table(path: str, table: str, timeout: float = 5.0) -> str:
    return haproxy_runtime.ask(path, "show table %s" % table, timeout)


def parse(text: str) -> dict[str, dict[str, int]]:
    """{owner: {counter: value}} of a ``show table`` answer."""
    rows: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match.group("owner")] = {k: int(v) for k, v in PAIR.findall(match.group("rest"))}
    return rows


def render(rows: dict[str, dict[str, int]], up: bool) -> str:
    out = [
        "# HELP ollama_fleet_key_table_up Whether the front's per-key table could be read.",
        "# TYPE ollama_fleet_key_table_up gauge",
        "ollama_fleet_key_table_up %d" % (1 if up else 0),
    ]
    series = (
        ("requests_total", "counter", "Requests sent with this key (refused ones included).", "http_req_cnt"),
        ("received_bytes_total", "counter", "Bytes the front received from this key's clients.", "bytes_in_cnt"),
        ("sent_bytes_total", "counter", "Bytes the front sent to this key's clients.", "bytes_out_cnt"),
        ("in_flight", "gauge", "This key's requests in flight now.", "conn_cur"),
    )
    for name, kind, text, counter in series:
        out += ["# HELP ollama_fleet_key_%s %s" % (name, text), "# TYPE ollama_fleet_key_%s %s" % (name, kind)]
        out += ['ollama_fleet_key_%s{owner="%s"} %d' % (name, owner, row.get(counter, 0)) for owner, row in sorted(rows.items())]
    out += ["# HELP ollama_fleet_key_refusals_total Requests the front refused for this key, by reason.",
            "# TYPE ollama_fleet_key_refusals_total counter"]
    for owner, row in sorted(rows.items()):
        for index, reason in enumerate(REASONS):
            out.append('ollama_fleet_key_refusals_total{owner="%s",reason="%s"} %d' % (owner, reason, row.get("gpc%d" % index, 0)))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="HAProxy's admin socket")
    parser.add_argument("--table", default="per_key")
    parser.add_argument("--out", required=True, help="the .prom file to write")
    args = parser.parse_args(argv)
    try:
        rows, up = parse(read_table(args.socket, args.table)), True
    except haproxy_runtime.RuntimeApiError as exc:
        print("cannot read the table: %s" % exc, file=sys.stderr)
        rows, up = {}, False
    textfile.write_atomic(args.out, render(rows, up))
    return 0 if up else 1


if __name__ == "__main__":
    raise SystemExit(main())
