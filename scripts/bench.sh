#!/usr/bin/env bash
# make bench: runs every side-by-side comparison (internal/benchcmp: the two
# sides of each interleaved, A, B, A, B …) and replaces the "compare"
# section of BENCHMARKS.md with N, p50/p90/p99 of each side, the ratio or
# difference and its goal, the machine and the command; then the scale
# section (scripts/bench-scale.sh), the credential proxy's
# (scripts/bench-proxy.sh) and the checkpoint's (scripts/bench-checkpoint.sh).
#
#   BENCH_N=10 ./scripts/bench.sh          # fewer rounds for every comparison
#   BENCH_ONLY='relay' ./scripts/bench.sh  # comparisons whose sub-benchmark name matches (relay-seq-nginx, relay-bulk, hot-reuse, task-state …)
#
# BENCH_N overrides each comparison's rounds (defaults: 30 for the relay's
# seq, 5 for the bulk stream, 200 for hot reuse, 10 for task-state events,
# 15 for cold acquire, 50 for the warm-pool hit);
# BENCH_BULK_MB sets the bulk stream's size (default 10: below the agent's 16 MiB run log, see BENCHMARKS.md). Needs redis-server,
# redis-benchmark, nginx, Docker and the images of make images. About
# seven minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp)
trap 'rm -f "$results"' EXIT
command="make bench"
[ -n "${BENCH_N:-}" ] && command="BENCH_N=$BENCH_N $command"
[ -n "${BENCH_BULK_MB:-}" ] && command="BENCH_BULK_MB=$BENCH_BULK_MB $command"
pattern="BenchmarkCompare"
[ -n "${BENCH_ONLY:-}" ] && pattern="BenchmarkCompare/.*${BENCH_ONLY}|BenchmarkCompare${BENCH_ONLY}"
# One package at a time: their sides must not compete for the CPUs.
for pkg in ./store ./handlers ./cmd/workspaced; do
  BENCHCMP_OUT=$results go test -run '^$' -bench "$pattern" -benchtime 1x -timeout 30m "$pkg" >&2
done
go run ./internal/benchcmp/benchreport -in "$results" -doc "${BENCH_DOC:-BENCHMARKS.md}" -command "$command" >/dev/null
if [ -z "${BENCH_ONLY:-}" ]; then
  for name in scale proxy checkpoint; do
    section=$(mktemp)
    case $name in
      proxy) BENCHTIME=${PROXY_BENCHTIME:-100x} COUNT=${PROXY_COUNT:-3} ./scripts/bench-proxy.sh >"$section" ;;
      scale) ./scripts/bench-scale.sh >"$section" ;;
      checkpoint) ./scripts/bench-checkpoint.sh >"$section" ;;
    esac
    go run ./internal/benchcmp/benchreport -section "$name" -markdown "$section" -doc "${BENCH_DOC:-BENCHMARKS.md}"
    rm -f "$section"
  done
fi
echo "${BENCH_DOC:-BENCHMARKS.md} updated"
