#!/usr/bin/env bash
# Build the local systemd test-host images (Debian 12 "bookworm", Debian 13 "trixie") with
# debootstrap from Debian's archive, then `docker import`. Each image is tagged with a hash of
# this recipe, so an unchanged recipe is never rebuilt; `:current` points at the newest build.
#   tests/images/build.sh [debian12|debian13 ...]      (default: both)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
packages=sudo,systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,ca-certificates,procps,curl,gnupg,openssh-server
recipe_hash=$( (cat "$0"; echo "$packages") | sha256sum | cut -c1-12)

suite_of() {
  case $1 in
    debian12) echo bookworm ;;
    debian13) echo trixie ;;
    *) echo "build.sh: unknown image '$1' (known: debian12 debian13)" >&2; return 1 ;;
  esac
}

build_one() {
  local name=$1 suite repo tag root
  suite=$(suite_of "$name")
  repo=ollama-fleet/$name
  tag=$repo:$recipe_hash
  if docker image inspect "$tag" >/dev/null 2>&1; then
    docker tag "$tag" "$repo:current"
    echo "images: $tag is up to date"
    return 0
  fi
  root=$(mktemp -d "/var/tmp/ollama-fleet-$name.XXXXXX")
  trap 'rm -rf "$root"' RETURN
  echo "images: building $tag (debootstrap $suite)"
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    return 1
  }
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES
  # A container has no consoles, udev or kernel to manage: mask what would only fail or wait.
  for unit in getty@tty1.service console-getty.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-networkd-wait-online.service \
    systemd-firstboot.service sys-kernel-config.mount sys-kernel-debug.mount \
    systemd-modules-load.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  # Like a fresh server install, every host gets its own identity at first boot: a machine id,
  # and SSH host keys made when the lab provisions it (scripts/lab-ssh.sh), never shared by
  # every container of this image.
  : >"$root/etc/machine-id"
  rm -f "$root"/etc/ssh/ssh_host_*
  # Without host keys sshd cannot start: it is enabled once they exist.
  rm -f "$root"/etc/systemd/system/multi-user.target.wants/ssh.service "$root"/etc/systemd/system/sshd.service
  # Like a freshly installed server: package lists for every configured suite, no cached .debs.
  chroot "$root" apt-get update -qq >>"$root.log" 2>&1
  rm -rf "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | docker import \
    -c 'ENV container=docker' \
    -c 'CMD ["/lib/systemd/systemd", "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"]' \
    - "$tag" >/dev/null
  docker tag "$tag" "$repo:current"
  rm -f "$root.log"
  echo "images: built $tag"
  prune_old "$repo"
}

prune_old() {  # drop the images of earlier recipes (one still used by a container is kept)
  local repo=$1 old
  for old in $(docker images "$repo" --format '{{.Tag}}'); do
    [[ $old == "$recipe_hash" || $old == current ]] && continue
    docker rmi "$repo:$old" >/dev/null 2>&1 && echo "images: removed $repo:$old (earlier recipe)"
  done
  return 0
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(debian12 debian13)
# Installed once beforehand by scripts/host-packages.sh: never from the parallel builds below,
# which would race for the dpkg lock.
if ! command -v debootstrap >/dev/null 2>&1; then
  for n in "${names[@]}"; do
    docker image inspect "ollama-fleet/$n:$recipe_hash" >/dev/null 2>&1 && continue
    echo "images: debootstrap is missing; run scripts/host-packages.sh first" >&2
    exit 1
  done
fi
pids=()
for n in "${names[@]}"; do
  build_one "$n" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
