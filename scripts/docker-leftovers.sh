#!/usr/bin/env bash
# Finds Docker containers and networks of ours that a test run left behind.
#
#   scripts/docker-leftovers.sh snapshot FILE   record what of ours exists now
#   scripts/docker-leftovers.sh check FILE      fail (exit 1, listing them) on
#                                               any that exist now but not in FILE
#
# "Ours": containers labelled io.workspaced.managed-by (runtime/docker) or
# workspaced.ecsdouble.cluster (internal/ecsdouble), or named ws-*
# (workspaces, pool workspaces ws-p-*), ecsdouble-* or wsd-*; networks
# labelled workspaced.ecsdouble.cluster or named wsd-*. Comparing with a
# snapshot keeps what was there before the run (a `make run` stack) out of
# the verdict. .ci/run wraps `make test` with it; `make faults` too.
set -euo pipefail

ours() {
  {
    docker ps -a --filter label=io.workspaced.managed-by --format 'container {{.ID}} {{.Names}} {{.Status}} {{.Labels}}'
    docker ps -a --filter label=workspaced.ecsdouble.cluster --format 'container {{.ID}} {{.Names}} {{.Status}} {{.Labels}}'
    docker ps -a --format 'container {{.ID}} {{.Names}} {{.Status}} {{.Labels}}' | awk '$3 ~ /^(ws-|ecsdouble-|wsd-)/'
    docker network ls --filter label=workspaced.ecsdouble.cluster --format 'network {{.ID}} {{.Name}}'
    docker network ls --format 'network {{.ID}} {{.Name}}' | awk '$3 ~ /^wsd-/'
  } | sort -u -k1,2
}

case "${1:-}" in
  snapshot)
    ours | awk '{print $1, $2}' >"$2"
    ;;
  check)
    leftovers=$(ours | while read -r kind id rest; do
      grep -qxF "$kind $id" "$2" || echo "$kind $id $rest"
    done)
    if [ -n "$leftovers" ]; then
      echo "left behind by the tests (remove them; fix the test that created them):" >&2
      echo "$leftovers" >&2
      exit 1
    fi
    ;;
  *) echo "usage: $0 snapshot|check FILE" >&2; exit 2 ;;
esac
