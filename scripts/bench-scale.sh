#!/usr/bin/env bash
# One API with BENCH_STREAMS (default 1000) concurrent streams, each to its
# own in-process agent on a Unix socket (handlers/scale_bench_test.go).
# Prints a Markdown section for BENCHMARKS.md.
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
echo "| metric | value |"
echo "|---|---|"
awk '/^BenchmarkScale/ { for (i = 3; i + 1 <= NF; i += 2) if ($(i+1) != "ns/op") print "| " $(i+1) " | " $i " |" }' "$out"
