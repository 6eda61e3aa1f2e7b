#!/usr/bin/env bash
# Make lab containers reachable like production servers: over SSH, as the sudo user `deploy`.
# This is the lab's stand-in for a site's OS installer (cloud-init, kickstart): it runs inside
# each container with `docker exec`, once per container, and Ansible never uses that path.
#   scripts/lab-ssh.sh DIR NAME=ADDRESS...
# DIR receives the lab's key pair (id_ed25519, made once per DIR) and known_hosts, built from
# each container's own host keys (made here, at first boot, never shared through the image).
set -euo pipefail
dir=${1:?usage: lab-ssh.sh DIR NAME=ADDRESS...}
shift
mkdir -p "$dir"
chmod 700 "$dir"
[[ -f $dir/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "ollama-fleet-lab" -f "$dir/id_ed25519"
pubkey=$(cat "$dir/id_ed25519.pub")
known=$dir/known_hosts
touch "$known"

for spec in "$@"; do
  name=${spec%%=*} address=${spec#*=}
  # A container just started may not have its systemd up yet (systemctl would fail to reach the
  # bus and ssh.service would never start): wait until boot is done, at most 90 s.
  for i in $(seq 1 180); do
    state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    [[ $i -eq 180 ]] && { echo "lab-ssh: $name did not finish booting (systemd: ${state:-no answer})" >&2; exit 1; }
    sleep 0.5
  done
  docker exec -i "$name" sh -eu -s "$pubkey" <<'SH'
id deploy >/dev/null 2>&1 || useradd --create-home --shell /bin/bash deploy
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
printf '%s\n' "$1" >/home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys
chmod 0600 /home/deploy/.ssh/authorized_keys
printf 'deploy ALL=(ALL) NOPASSWD: ALL\n' >/etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/deploy
ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A >/dev/null
systemctl reset-failed ssh.service 2>/dev/null || true
systemctl enable --quiet --now ssh.service
SH
  hostkey=$(docker exec "$name" cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f1,2)
  # Replace whatever an earlier container at this address left behind.
  grep -v "^$address " "$known" >"$known.tmp" || true
  echo "$address $hostkey" >>"$known.tmp"
  mv "$known.tmp" "$known"
done

for spec in "$@"; do
  address=${spec#*=}
  for i in $(seq 1 30); do
    if ssh -q -o BatchMode=yes -o ConnectTimeout=2 -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$known" -i "$dir/id_ed25519" "deploy@$address" sudo -n true; then
      break
    fi
    [[ $i -eq 30 ]] && { echo "lab-ssh: deploy@$address does not answer over SSH" >&2; exit 1; }
    sleep 1
  done
done
