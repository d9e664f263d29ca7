#!/usr/bin/env bash
# The SSE relay's comparisons only (handlers/relay_bench_test.go): the
# workspaced relay against nginx (proxy_buffering off) and against the
# agent reached directly, the sides interleaved run by run
# (internal/benchcmp). Prints the Markdown table; `make bench` runs these
# with every other comparison and writes BENCHMARKS.md.
#
#   BENCH_N=30 BENCH_BULK_MB=10 ./scripts/bench-relay.sh
#
# Needs redis-server and nginx (apt-get install -y redis-server nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp)
doc=$(mktemp)
trap 'rm -f "$results" "$doc"' EXIT
BENCHCMP_OUT=$results go test -run '^$' -bench 'BenchmarkCompare/relay' -benchtime 1x -timeout 30m ./handlers >&2
go run ./internal/benchcmp/benchreport -in "$results" -doc "$doc" \
  -command "BENCH_N=${BENCH_N:-default} BENCH_BULK_MB=${BENCH_BULK_MB:-10} ./scripts/bench-relay.sh"
