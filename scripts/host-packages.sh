#!/usr/bin/env bash
# Install the controller's host prerequisites from Debian's archive, once, in one apt-get run:
# the Docker engine (docker.io, iptables), debootstrap for the test images, and the OpenSSH
# client the lab and the tests connect with. Does nothing when all are present.
# Runs before anything that works in parallel (two apt-get runs at once fail on the dpkg lock).
set -euo pipefail
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
[[ ${#missing[@]} -eq 0 ]] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "host-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
