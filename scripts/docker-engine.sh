#!/usr/bin/env bash
# Make sure a Docker engine answers. Does nothing when one does; otherwise starts dockerd
# (installed by scripts/host-packages.sh, which runs first) in the background.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker info >/dev/null 2>&1; then
  exit 0
fi
scripts/host-packages.sh
echo "docker-engine: starting dockerd" >&2
mkdir -p /var/log
nohup setsid dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer within 60 s; last log lines:" >&2
tail -n 20 /var/log/dockerd.log >&2
exit 1
