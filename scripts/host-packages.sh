#!/usr/bin/env bash
# Install the controller's host prerequisites from Debian's archive, once, in one apt-get run:
# the Docker engine (docker.io, iptables), debootstrap for the test images, and the OpenSSH
# client the lab and the tests connect with; and promtool, which the unit tests check the alert
# rules with, extracted from Debian's prometheus package into .cache/promtool/ without installing
# it (no Prometheus service on the controller). Does nothing when all are present.
# Runs before anything that works in parallel (two apt-get runs at once fail on the dpkg lock).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/sbin:/sbin
declare -A wanted=(
  [dockerd]=docker.io
  [iptables]=iptables
  [debootstrap]=debootstrap
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
# Where tests/unit/promtool.py looks when promtool is not on PATH.
promtool=${OLLAMA_FLEET_CACHE:-$PWD/.cache}/promtool/usr/bin/promtool
need_promtool=0
command -v promtool >/dev/null 2>&1 || [[ -x $promtool ]] || need_promtool=1
[[ ${#missing[@]} -eq 0 && $need_promtool -eq 0 ]] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "host-packages: installing ${missing[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ $need_promtool -eq 1 ]]; then
  echo "host-packages: promtool from Debian's prometheus package (extracted, not installed) into ${promtool%/usr/bin/promtool}" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get -qq download prometheus >/dev/null)
  debs=("$tmp"/prometheus_*.deb)
  [[ -f ${debs[0]} ]] || { echo "host-packages: apt-get download prometheus left no .deb" >&2; exit 1; }
  dpkg-deb --fsys-tarfile "${debs[0]}" | tar -x -C "$tmp" ./usr/bin/promtool
  install -D -m 0755 "$tmp/usr/bin/promtool" "$promtool"
fi
