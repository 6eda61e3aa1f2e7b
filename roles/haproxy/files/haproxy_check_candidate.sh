#!/bin/sh
# Checks a candidate file as HAProxy loads it (its own loaders: crt, map, acl -f, errorfile), before
# it replaces the live file (role haproxy, ollama-fleet: the `validate:` of the tasks that install
# the TLS PEM, the key map, the edge's lists and maps and its JSON answers). A certificate whose key
# does not match, a map or list HAProxy cannot load, an answer that is not an HTTP response fails
# here, and the running file, which the next reload and start load, stays.
#   haproxy_check_candidate.sh crt|map|acl|errorfile FILE
set -eu
[ $# -eq 2 ] || { echo "usage: $0 crt|map|acl|errorfile FILE" >&2; exit 2; }
kind=$1
file=$2
case $kind in
  crt) rule="bind 127.0.0.1:1 ssl crt $file" ;;
  map) rule="http-request set-var(txn.owner) req.hdr(authorization),map($file)" ;;
  acl) rule="acl candidate req.hdr(authorization) -f $file" ;;
  errorfile) rule="errorfile 503 $file" ;;
  *) echo "$0: unknown kind '$kind' (crt, map, acl or errorfile)" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/candidate.cfg" <<CFG
defaults
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
frontend candidate
  bind 127.0.0.1:1
  $rule
CFG
haproxy -c -f "$dir/candidate.cfg" >/dev/null
