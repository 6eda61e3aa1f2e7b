#!/usr/bin/env bash
# Run every test: toolchain, host packages, Docker engine, test images, lint, unit tests, Molecule scenarios.
#   scripts/test.sh                 everything
#   scripts/test.sh lint unit       only the named stages (bootstrap/engine/images always run first
#                                   when a stage needs them)
#   MOLECULE_SCENARIOS="default"    limit the Molecule stage to these scenarios
#   MOLECULE_DISTROS="ubuntu2404"   extra distro platforms to try (needs their images; see README)
# Prints each stage's wall time; exits non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
logs=.cache/test-logs
mkdir -p "$logs"
# One run at a time drives Docker: the scenarios share one engine, and a second run's destroy or
# `molecule reset` would remove the first one's containers. A second run waits for the first.
exec 9>".cache/test.lock"
if ! flock -n 9; then
  echo "test: another scripts/test.sh holds .cache/test.lock; waiting for it" >&2
  flock 9
fi
rm -f "$logs"/*.log "$logs"/scenario-times.txt

declare -a names=() times=() results=() scenario_times=()
failed=0


stage() {  # stage NAME COMMAND...
  local name=$1 start rc
  shift
  echo "=== stage $name: $*"
  start=$(date +%s)
  "$@" 2>&1 | tee "$logs/$name.log"
  rc=${PIPESTATUS[0]}
  names+=("$name"); times+=($(($(date +%s) - start)))
  if [[ $rc -eq 0 ]]; then results+=(ok); else results+=("FAILED (rc $rc)"); failed=1; fi
  return "$rc"
}

lint() {
  yamllint --strict . && ansible-lint --profile production
}

unit() {
  pytest -p no:cacheprovider tests
}

molecule_all() {
  local scenarios rc=0 s
  # Every directory under molecule/ with a molecule.yml is a scenario (molecule/shared holds
  # helpers); `distro` runs per platform below.
  scenarios=${MOLECULE_SCENARIOS:-$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done | grep -vx distro | tr '\n' ' ')}
  local start result
  for s in $scenarios; do
    start=$(date +%s)
    if molecule test -s "$s"; then result=ok; else rc=1; result=FAILED; echo "FAILED: molecule scenario $s"; fi
    scenario_times+=("$(printf '    %-16s %5ss  %s' "$s" "$(($(date +%s) - start))" "$result")")
  done
  distros || rc=1
  printf '%s\n' "${scenario_times[@]}" >"$logs/scenario-times.txt"
  return $rc
}

# Ubuntu and Rocky test hosts need images from a registry, which this kind of machine cannot
# reach. Run them where the image is present locally (or pullable): never skip silently.
distros() {
  local d image rc=0
  for d in ${MOLECULE_DISTROS:-ubuntu2204 ubuntu2404 rockylinux9}; do
    image=$(tests/images/distro-image.sh "$d") || { rc=1; continue; }
    if docker image inspect "$image" >/dev/null 2>&1 || [[ ${MOLECULE_PULL:-0} == 1 ]]; then
      MOLECULE_DISTRO=$d MOLECULE_DISTRO_IMAGE=$image molecule test -s distro || rc=1
    else
      echo "SKIPPED: molecule platform $d: image $image is not present locally and no image registry is reachable here (pull it, or set MOLECULE_PULL=1 where a registry is reachable)"
    fi
  done
  return $rc
}

want() {  # is stage $1 selected?
  [[ $# -eq 0 || ${#selected[@]} -eq 0 ]] && return 0
  local s
  for s in "${selected[@]}"; do [[ $s == "$1" ]] && return 0; done
  return 1
}

selected=("$@")
stage bootstrap scripts/bootstrap.sh || exit 1
# Host packages first and alone: the stages after it may run apt-free in parallel. The unit
# tests need one of them too (promtool checks the alert rules).
if want molecule || want unit; then
  stage host scripts/host-packages.sh || exit 1
fi
if want molecule; then
  # dockerd outlives this run: it must not inherit the lock (fd 9).
  stage engine scripts/docker-engine.sh 9>&- || exit 1
  stage images tests/images/build.sh || exit 1
fi
want lint && stage lint lint
want unit && stage unit unit
want molecule && stage molecule molecule_all

echo
echo "=== summary"
for i in "${!names[@]}"; do
  printf '  %-10s %5ss  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
  [[ ${names[$i]} == molecule && -s $logs/scenario-times.txt ]] && cat "$logs/scenario-times.txt"
done
# Add up what every pytest run reported (unit tests, and the testinfra verifiers, whose lines
# Molecule indents behind a box-drawing margin); a distro platform not run counts as skipped.
# A failed stage that reported no failing test (lint, a converge or idempotence step) counts as
# one failure, so the tally never reads "0 failed" for a red run.
failed_stages=()
for i in "${!names[@]}"; do [[ ${results[$i]} == ok ]] || failed_stages+=("${names[$i]}"); done
python3 - "$logs" "${failed_stages[@]}" <<'PY'
import pathlib, re, sys
totals = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
failed_stages = set(sys.argv[2:])
for log in pathlib.Path(sys.argv[1]).glob("*.log"):
    before = totals["failed"] + totals["error"]
    for line in log.read_text(errors="replace").splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if re.match(r"^[\s\u2502]*=+ .*\b(passed|failed|error)\b.* in [0-9.]+s", line):
            for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", line):
                totals[kind] += int(n)
        elif line.startswith("SKIPPED: molecule platform "):
            totals["skipped"] += 1
    if log.stem in failed_stages and totals["failed"] + totals["error"] == before:
        totals["failed"] += 1
print(f"tests: {totals['passed']} passed, {totals['failed'] + totals['error']} failed, {totals['skipped']} skipped")
PY
exit $failed
