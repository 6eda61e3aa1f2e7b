#!/usr/bin/env bash
# Create or refresh the project's Python environment (.venv) from requirements.txt.
# Does nothing when .venv exists and was built from the current requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$( (cat requirements.txt; python3 --version) | sha256sum | cut -d' ' -f1)
if [[ -x $venv/bin/ansible-playbook && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
echo "bootstrap: building $venv from requirements.txt" >&2
python3 -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 14) else "bootstrap: Python 3.10-3.13 is required")'
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
echo "$want" >"$stamp"
