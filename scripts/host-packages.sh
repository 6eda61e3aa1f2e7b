#!/usr/bin/env bash
# Install the controller's host prerequisites from Debian's archive, once, in one apt-get run:
# the Docker engine (docker.io, iptables), debootstrap for the test images, and the OpenSSH
# client the lab and the tests connect with; and promtool, which the unit tests check the alert
# rules with, extracted from Debian's prometheus package into .cache/promtool/ without installing
# it (no Prometheus service on the controller); and nginx, which the unit tests serve the site
# mirror's config with, extracted the same way from Debian's nginx and nginx-common packages into
# .cache/nginx/ (usr/sbin/nginx, etc/nginx/mime.types; no service, nothing listens on port 80),
# with the temporary directories its binary is built to use (/var/lib/nginx/*; `nginx -t` needs
# them). Does nothing when all are present.
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
# Where tests/unit/nginx.py looks when nginx is not installed.
nginx_root=${OLLAMA_FLEET_CACHE:-$PWD/.cache}/nginx
nginx_temp=${OLLAMA_FLEET_NGINX_TEMP:-/var/lib/nginx}  # the binary's compiled-in temp paths (tests move it)
need_nginx=0 nginx_extracted=0
[[ -x $nginx_root/usr/sbin/nginx && -f $nginx_root/etc/nginx/mime.types ]] && nginx_extracted=1
command -v nginx >/dev/null 2>&1 || [[ $nginx_extracted -eq 1 && -d $nginx_temp/body ]] || need_nginx=1
[[ ${#missing[@]} -eq 0 && $need_promtool -eq 0 && $need_nginx -eq 0 ]] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "host-packages: installing ${missing[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $need_promtool -eq 1 ]]; then
  echo "host-packages: promtool from Debian's prometheus package (extracted, not installed) into ${promtool%/usr/bin/promtool}" >&2
  (cd "$tmp" && apt-get -qq download prometheus >/dev/null)
  debs=("$tmp"/prometheus_*.deb)
  [[ -f ${debs[0]} ]] || { echo "host-packages: apt-get download prometheus left no .deb" >&2; exit 1; }
  dpkg-deb --fsys-tarfile "${debs[0]}" | tar -x -C "$tmp" ./usr/bin/promtool
  install -D -m 0755 "$tmp/usr/bin/promtool" "$promtool"
fi
if [[ $need_nginx -eq 1 ]]; then
  if [[ $nginx_extracted -eq 0 ]]; then
    echo "host-packages: nginx from Debian's nginx and nginx-common packages (extracted, not installed) into $nginx_root" >&2
    mkdir -p "$tmp/nginx"
    (cd "$tmp/nginx" && apt-get -qq download nginx nginx-common >/dev/null)
    for pkg in nginx nginx-common; do
      debs=("$tmp/nginx/${pkg}"_*.deb)
      [[ -f ${debs[0]} ]] || { echo "host-packages: apt-get download $pkg left no .deb" >&2; exit 1; }
      dpkg-deb --fsys-tarfile "${debs[0]}" | tar -x -C "$tmp/nginx" ./usr ./etc 2>/dev/null || true
    done
    [[ -x $tmp/nginx/usr/sbin/nginx && -f $tmp/nginx/etc/nginx/mime.types ]] || { echo "host-packages: no usr/sbin/nginx or etc/nginx/mime.types in the packages" >&2; exit 1; }
    install -D -m 0755 "$tmp/nginx/usr/sbin/nginx" "$nginx_root/usr/sbin/nginx"
    install -D -m 0644 "$tmp/nginx/etc/nginx/mime.types" "$nginx_root/etc/nginx/mime.types"
    install -d -m 0755 "$nginx_root/etc/nginx/modules-enabled"
  fi
  install -d -m 0755 "$nginx_temp" "$nginx_temp"/{body,proxy,fastcgi,uwsgi,scgi}
fi
