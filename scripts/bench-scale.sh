#!/usr/bin/env bash
# One API with BENCH_STREAMS (default 1000) concurrent streams, each to its
# own in-process agent on a Unix socket (handlers/scale_bench_test.go):
# the API as its own process (`workspaced api`, measured alone) and in the
# benchmark's process. Prints a Markdown section for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'BenchmarkScale' -benchtime 1x -timeout 30m ./handlers/ | tee "$out" >&2
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "## Scale: concurrent streams through one API"
echo
echo "Machine: $(nproc) CPUs, ${cpu}; $(go version | cut -d' ' -f3-4); $(date -u '+%Y-%m-%d %H:%M UTC')."
echo "Command: \`BENCH_STREAMS=${BENCH_STREAMS:-1000} ./scripts/bench-scale.sh\` (also run by \`make bench\`)"
echo
# One row per metric, one column per sub-benchmark (– where it has none).
awk '
/^BenchmarkScale\// {
	name = $1; sub(/^BenchmarkScale\//, "", name); sub(/-[0-9]+$/, "", name)
	cols[++ncols] = name
	for (i = 3; i + 1 <= NF; i += 2) {
		if ($(i+1) == "ns/op") continue
		if (!($(i+1) in seen)) { seen[$(i+1)] = 1; rows[++nrows] = $(i+1) }
		v[name, $(i+1)] = $i
	}
}
END {
	head = "| metric |"; rule = "|---|"
	for (c = 1; c <= ncols; c++) { head = head " " cols[c] " |"; rule = rule "---|" }
	print head; print rule
	for (r = 1; r <= nrows; r++) {
		line = "| " rows[r] " |"
		for (c = 1; c <= ncols; c++) line = line " " (((cols[c], rows[r]) in v) ? v[cols[c], rows[r]] : "–") " |"
		print line
	}
}' "$out"
