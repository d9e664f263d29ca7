#!/usr/bin/env bash
# Benchmarks a checkpoint (files.Store.Save with the agent's tree digests)
# against `aws s3 sync` (Debian's awscli) of the same 200 MiB tree to the
# same in-process S3 emulator, through one byte-counting proxy. Prints a
# Markdown section for BENCHMARKS.md.
#
#   BENCHTIME=2x COUNT=3 ./scripts/bench-checkpoint.sh
#
# Needs Docker, the workspace image (make images; WORKSPACE_TEST_IMAGE
# overrides workspaced/workspace:dev) and Debian's awscli (/usr/bin/aws).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-2x}
COUNT=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# One process per round, each running the four cases in turn: rounds
# interleave the cases (go test -count would repeat each case in a row).
for _ in $(seq "$COUNT"); do
  go test -run '^$' -bench 'BenchmarkCheckpoint' -benchtime "$BENCHTIME" -count 1 ./files/ 2>/dev/null | grep '^Benchmark' | tee -a "$out" >&2
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
# median <sub-benchmark> <unit>
median() {
  awk -v name="BenchmarkCheckpoint/$1" -v unit="$2" '$1 ~ "^" name "-" {
      for (i = 3; i < NF; i++) if ($(i+1) == unit) print $i }' "$out" |
    sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) { print (a == 0 ? "1" : "∞") } else printf "%.3g", a / b }'; }
ms() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1e6 }'; }

echo "## Checkpoints"
echo
echo "Machine: $(nproc) CPUs, ${cpu}; $(go version | cut -d' ' -f3-4); $(date -u +%Y-%m-%d); shared with other jobs."
echo "Command: \`BENCHTIME=$BENCHTIME COUNT=$COUNT ./scripts/bench-checkpoint.sh\`"
echo
echo "A 200 MiB workspace (200 files of 1 MiB random data) checkpointed by"
echo "\`files.Store.Save\` from a real workspace container, against \`aws s3 sync\`"
echo "(Debian's awscli $(/usr/bin/aws --version 2>&1 | cut -d' ' -f1 | cut -d/ -f2)) of the same tree from the host, both to the"
echo "in-process emulator through one proxy counting request body bytes."
echo "\"1MiB-changed\" rewrites one file before each operation (not timed)."
echo "Median of $COUNT rounds (one process each, running the four cases in turn)."
echo "Ratios are workspaced / awscli."
echo
echo "| case | workspaced ms | awscli ms | time ratio | workspaced bytes up | awscli bytes up | bytes ratio |"
echo "|---|---|---|---|---|---|---|"
for c in unchanged 1MiB-changed; do
  wt=$(median "$c/workspaced" ns/op); at=$(median "$c/awscli" ns/op)
  wb=$(median "$c/workspaced" up-B/op); ab=$(median "$c/awscli" up-B/op)
  echo "| $c | $(ms "$wt") | $(ms "$at") | $(ratio "$wt" "$at") | ${wb%.*} | ${ab%.*} | $(ratio "$wb" "$ab") |"
done
echo
echo "An unchanged workspace costs one metadata walk in the agent per tree"
echo "and uploads nothing. A change uploads a delta of the changed files and"
echo "the tree's listing (D35); the backend still reads and hashes the whole"
echo "tree from the agent (local traffic, not S3). Not measured here:"
echo "every \`WORKSPACE_FILES_MAX_DELTAS\`+1-th changed save (default 17th) writes"
echo "a fresh base of the whole tree (see [docs/files.md](docs/files.md))."
