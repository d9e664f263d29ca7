#!/usr/bin/env bash
# Benchmarks the credential proxy against a direct connection to the same
# test upstream, side by side in one run (each iteration makes one direct
# and one proxied call), and prints a Markdown section for BENCHMARKS.md.
#
#   BENCHTIME=1000x COUNT=3 ./scripts/bench-proxy.sh
#
# Everything runs on loopback: the proxy reaches its upstreams through the
# tests' in-process resolver and dialer (see proxy/harness_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-1000x}
COUNT=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'BenchmarkBedrockInvoke|BenchmarkBedrockStreamTTFB|BenchmarkConnectThroughput' \
  -benchtime "$BENCHTIME" -count "$COUNT" ./proxy/ | tee "$out" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "## Credential proxy"
echo
echo "Machine: $(nproc) CPUs, ${cpu}; $(go version | cut -d' ' -f3-4); $(date -u +%Y-%m-%d)."
echo "Command: \`BENCHTIME=$BENCHTIME COUNT=$COUNT ./scripts/bench-proxy.sh\`"
echo
echo "Median over $COUNT runs of each metric (ratio = proxied / direct, same run):"
echo
echo "| metric | value |"
echo "|---|---|"
# Each metric is a (value, unit) pair after the ns/op column; take the
# median of each unit across the runs (portable awk, no gawk extensions).
awk '/^Benchmark/ { for (i = 5; i + 1 <= NF; i += 2) print $(i+1), $i }' "$out" |
  sort -k1,1 -k2,2g |
  awk '{ vals[$1] = vals[$1] " " $2; n[$1]++ }
    END { for (k in vals) { split(substr(vals[k], 2), a, " "); print k, a[int((n[k] + 1) / 2)] } }' |
  sort | while read -r k val; do echo "| $k | $val |"; done
