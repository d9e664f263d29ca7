#!/usr/bin/env bash
# make faults: runs every fault-injection scenario — each a Go test named
# TestFault* (real redis-server, the Docker engine) — and writes a table of
# scenario, test, result and duration into docs/operations.md between the
# faults markers. Bounded (FAULTS_TIMEOUT per package, default 10m), local,
# and it fails if the scenarios left a container or network of ours behind.
#
#   scripts/faults.sh              run all, update docs/operations.md
#   FAULTS_RUN='^TestFaultSlow' scripts/faults.sh   a subset (table not written)
set -uo pipefail
cd "$(dirname "$0")/.."
export CI=${CI:-true} # a missing dependency fails a scenario instead of skipping it

run=${FAULTS_RUN:-^TestFault}
timeout=${FAULTS_TIMEOUT:-10m}
doc=docs/operations.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
logs=${FAULTS_LOGS:-.cache/faults} # each package's full `go test -v` output
mkdir -p "$logs"

# Packages holding a scenario: grep, not a list, so a new TestFault is picked up.
mapfile -t files < <(git grep -l -E '^func TestFault[A-Za-z0-9_]*\(t \*testing\.T\)' -- '*_test.go')
if [ ${#files[@]} -eq 0 ]; then
  echo "no TestFault* tests found" >&2
  exit 1
fi
mapfile -t pkgs < <(for f in "${files[@]}"; do echo "./$(dirname "$f")"; done | sort -u)

# scenario text: the first sentence of each test's doc comment.
for f in "${files[@]}"; do
  awk -v pkg="$(dirname "$f")" '
    /^\/\// { line = $0; sub(/^\/\/ ?/, "", line); doc = doc (doc == "" ? "" : " ") line; next }
    /^func TestFault[A-Za-z0-9_]*\(t \*testing\.T\)/ {
      name = $2; sub(/\(.*/, "", name)
      s = doc; sub("^" name ":? *", "", s); i = index(s, ". "); if (i > 0) s = substr(s, 1, i)
      s = toupper(substr(s, 1, 1)) substr(s, 2)
      print pkg "\t" name "\t" s
    }
    { doc = "" }' "$f"
done | sort >"$work/scenarios"

./scripts/docker-leftovers.sh snapshot "$work/docker-before"
status=0
for pkg in "${pkgs[@]}"; do
  echo "== $pkg" >&2
  out="$logs/$(echo "${pkg#./}" | tr / _).log"
  if ! go test -race -count=1 -v -timeout "$timeout" -run "$run" "$pkg" >"$out" 2>&1; then
    status=1
    # The failures themselves: the tests' own messages (file_test.go:N:) and panics.
    grep -E '^\s+[A-Za-z0-9_]+_test\.go:[0-9]+: |^panic:' "$out" | grep -v 'log:$' | head -40 >&2
    echo "full output: $out" >&2
  fi
  grep -E '^(--- |ok |FAIL)' "$out" >&2 || true
  cp "$out" "$work/out"
  awk -v pkg="${pkg#./}" '/^--- (PASS|FAIL|SKIP): TestFault/ {
      d = $4; gsub(/[()]/, "", d); print pkg "\t" $3 "\t" $2 "\t" d }' "$work/out" >>"$work/results"
done
if ! ./scripts/docker-leftovers.sh check "$work/docker-before"; then status=1; fi

if [ "$run" = "^TestFault" ]; then
  {
    echo "<!-- faults:begin (scripts/faults.sh writes this table; do not edit) -->"
    echo "| scenario | package / test | result | duration |"
    echo "|---|---|---|---|"
    sort "$work/results" | while IFS=$'\t' read -r pkg name result dur; do
      text=$(awk -F'\t' -v p="$pkg" -v n="$name" '$1 == p && $2 == n { print $3 }' "$work/scenarios")
      echo "| ${text:-$name} | \`$pkg\` \`$name\` | ${result%:} | $dur |"
    done
    echo
    echo "Last run: $(date -u +%Y-%m-%d), \`make faults\` on $(uname -sm), Go $(go env GOVERSION), $(docker version --format 'Docker {{.Server.Version}}' 2>/dev/null || echo 'no Docker')."
    echo "<!-- faults:end -->"
  } >"$work/table"
  if grep -q '^<!-- faults:begin' "$doc"; then
    awk -v table="$work/table" '
      /^<!-- faults:begin/ { while ((getline l < table) > 0) print l; skip = 1; next }
      /^<!-- faults:end -->/ { skip = 0; next }
      !skip' "$doc" >"$work/doc" && cp "$work/doc" "$doc"
  else
    { echo; echo "## Fault scenarios (make faults)"; echo; cat "$work/table"; } >>"$doc"
  fi
  echo "table written to $doc" >&2
fi
exit $status
