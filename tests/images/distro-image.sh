#!/usr/bin/env bash
# Print the image used for an extra Molecule distro platform (scenario `distro`).
# These are public systemd+Ansible images; override with MOLECULE_DISTRO_IMAGE.
set -euo pipefail
if [[ -n ${MOLECULE_DISTRO_IMAGE:-} ]]; then
  echo "$MOLECULE_DISTRO_IMAGE"
  exit 0
fi
case ${1:?usage: distro-image.sh DISTRO} in
  ubuntu2004 | ubuntu2204 | ubuntu2404 | rockylinux8 | rockylinux9 | almalinux9)
    echo "docker.io/geerlingguy/docker-$1-ansible:latest" ;;
  debian12) echo "ollama-fleet/debian12:current" ;;
  debian13) echo "ollama-fleet/debian13:current" ;;
  *) echo "distro-image.sh: unknown distro '$1'" >&2; exit 1 ;;
esac
