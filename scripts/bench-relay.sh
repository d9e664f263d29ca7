#!/usr/bin/env bash
# Benchmarks the API's SSE relay against two baselines measured in the same
# run: the agent reached directly on its Unix socket, and nginx
# (proxy_buffering off) in front of the same socket. Prints a Markdown
# section for BENCHMARKS.md.
#
#   BENCHTIME=30x COUNT=5 ./scripts/bench-relay.sh
#
# Needs redis-server and nginx (apt-get install -y redis-server nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-30x}
COUNT=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'BenchmarkRelay' -benchtime "$BENCHTIME" -count "$COUNT" ./handlers/ | tee "$out" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
# median <sub-benchmark> <unit>
median() {
  awk -v name="BenchmarkRelay/$1" -v unit="$2" '$1 ~ "^" name "-" {
      for (i = 3; i < NF; i++) if ($(i+1) == unit) print $i }' "$out" |
    sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "## SSE relay"
echo
echo "Machine: $(nproc) CPUs, ${cpu}; $(go version | cut -d' ' -f3-4); $(date -u +%Y-%m-%d)."
echo "Command: \`BENCHTIME=$BENCHTIME COUNT=$COUNT ./scripts/bench-relay.sh\`"
echo
echo "One run of \`seq 1 5000\` in a real agent (5000 \`stdout\` events), read to the"
echo "final \`done\`; median of $COUNT runs. Ratios are against *direct* from the same run."
echo
echo "| path | events/s | ratio | time to first event (µs) | ratio |"
echo "|---|---|---|---|---|"
d_ev=$(median direct events/s); d_tt=$(median direct ttfe-µs)
for p in direct nginx workspaced; do
  ev=$(median "$p" events/s); tt=$(median "$p" ttfe-µs)
  echo "| $p | ${ev%.*} | $(ratio "$ev" "$d_ev") | ${tt%.*} | $(ratio "$tt" "$d_tt") |"
done
