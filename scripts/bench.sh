#!/usr/bin/env bash
# make bench: runs every benchmark script and replaces its section of
# BENCHMARKS.md (between <!-- bench:NAME --> markers), so the file always
# holds the latest figures with the command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."
for name in relay proxy checkpoint; do
  section=$(mktemp)
  "./scripts/bench-$name.sh" >"$section"
  python3 - "$name" "$section" <<'PY'
import re, sys
name, section = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
path = "BENCHMARKS.md"
text = open(path).read()
start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
block = f"{start}\n{section}\n{end}"
pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
  rm -f "$section"
done
echo "BENCHMARKS.md updated"
