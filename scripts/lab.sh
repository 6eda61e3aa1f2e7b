#!/usr/bin/env bash
# The local lab: systemd containers standing in for servers, converged with site.yml.
#   scripts/lab.sh up       create (or reuse) the lab containers, run site.yml on them and print
#                           the front and, where the lab has a monitoring host, the Prometheus URL
#   scripts/lab.sh create   only create (or reuse) the bare containers, reachable over SSH
#   scripts/lab.sh down     remove the lab's containers and network
#   scripts/lab.sh status   show the lab's containers
# Hosts, addresses and images come from inventories/lab/hosts.yml. The lab is the production
# example plus a short overlay (inventories/lab/group_vars/*/10-lab.yml), reached over SSH as
# the sudo user `deploy`, like a site: after `up`, `ansible-playbook -i inventories/lab …` works
# by hand too.
set -euo pipefail
cd "$(dirname "$0")/.."
network=ollama-fleet-lab
subnet=172.28.10.0/24
label=ollama-fleet.lab=1

lab_hosts() {
  # name address image, one host a line
  .venv/bin/ansible-inventory -i inventories/lab --list 2>/dev/null | python3 -c '
import json, sys
inv = json.load(sys.stdin)
for name, hv in sorted(inv["_meta"]["hostvars"].items()):
    print(name, hv["ansible_host"], hv["lab_image"])'
}

# The lab has no internet: Ollama releases and the model come from the stand-in's builders, in
# the places the lab overlay (inventories/lab/group_vars/ollama_nodes/10-lab.yml) reads.
build_fixtures() {
  local version
  version=$(.venv/bin/ansible-inventory -i inventories/lab --host lab-node1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ollama_version"])')
  python3 tests/ollama_standin/build_release.py --version "$version" --out ".cache/releases/$version" >/dev/null
  python3 tests/ollama_standin/build_model.py --name qwen3:4b --out .cache/models-bundle >/dev/null
  python3 tests/ollama_standin/build_model.py --name qwen3:4b-instruct-2507-q4_K_M --variant instruct \
    --answers tests/golden/answers-good.json --out .cache/models-bundle >/dev/null
  # The front's CA, certificate and API key (kept once made), read by the lab overlay.
  .venv/bin/python scripts/lab_secrets.py .cache/lab >/dev/null
}

create() {
  scripts/bootstrap.sh
  scripts/host-packages.sh
  scripts/docker-engine.sh
  tests/images/build.sh
  if ! docker network inspect "$network" >/dev/null 2>&1; then
    docker network create --subnet "$subnet" --label "$label" "$network" >/dev/null
  fi
  while read -r name address image; do
    if [[ $(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null) == true ]]; then
      continue
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --hostname "$name" --label "$label" \
      --network "$network" --ip "$address" \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW --cgroupns=host \
      --sysctl net.ipv4.ip_nonlocal_bind=1 \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
      "ollama-fleet/$image:current" /lib/systemd/systemd SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 >/dev/null
    echo "lab: started $name ($image, $address)"
  done < <(lab_hosts)
  while read -r name _ _; do
    for _ in $(seq 1 30); do
      state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
      [[ $state == running || $state == degraded ]] && break
      sleep 1
    done
  done < <(lab_hosts)
  # shellcheck disable=SC2046
  scripts/lab-ssh.sh .cache/lab/ssh $(lab_hosts | awk '{print $1 "=" $2}')
  build_fixtures
}

up() {
  create
  ANSIBLE_CONFIG=ansible.cfg .venv/bin/ansible-playbook -i inventories/lab site.yml
  .venv/bin/python scripts/lab_report.py
}

down() {
  local ids
  ids=$(docker ps -aq --filter "label=$label")
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
  fi
  if docker network inspect "$network" >/dev/null 2>&1; then
    docker network rm "$network" >/dev/null
  fi
  # The lab's key and known host keys go with its containers.
  rm -rf .cache/lab/ssh
  echo "lab: removed"
}

status() {
  docker ps -a --filter "label=$label" --format 'table {{.Names}}\t{{.Status}}\t{{.Image}}'
}

case ${1:-} in
  up) up ;;
  create) create ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|create|down|status" >&2; exit 2 ;;
esac
