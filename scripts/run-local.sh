#!/usr/bin/env bash
# make run: start workspaced on this machine with embedded defaults — the
# Docker runtime, the in-process gochannel bus, a private redis-server — and
# print how to call it. No cloud account. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${WORKSPACED_STATE_DIR:-$PWD/.cache/run}
mkdir -p "$state" bin

go build -o bin/workspaced ./cmd/workspaced
go build -o bin/wsctl ./cmd/wsctl

if [ ! -s "$state/api-key" ]; then
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/api-key")
fi
key=$(cat "$state/api-key")

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null; then
    echo "redis-server not found: install it (sudo apt-get install -y redis-server) or set REDIS_URL" >&2
    exit 1
  fi
  rm -f "$state/redis.sock"
  redis-server --port 0 --unixsocket "$state/redis.sock" --unixsocketperm 700 \
    --dir "$state" --save "" --appendonly no --loglevel warning >"$state/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do [ -S "$state/redis.sock" ] && break; sleep 0.1; done
  export REDIS_URL="unix://$state/redis.sock"
fi

export CONTAINER_MANAGER_TYPE=docker BUS=gochannel
export HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8000}
export API_KEYS="local:$key"
export WORKSPACE_SOCKET_BASE_PATH=${WORKSPACE_SOCKET_BASE_PATH:-$state/sockets}
export LOG_FORMAT=${LOG_FORMAT:-text}
mkdir -p "$WORKSPACE_SOCKET_BASE_PATH"

cat <<MSG

workspaced is starting on http://$HTTP_ADDR (Docker runtime, gochannel bus, Redis $REDIS_URL).
In another terminal:

  export WORKSPACED_URL=http://$HTTP_ADDR WORKSPACED_API_KEY=\$(cat $state/api-key)
  bin/wsctl exec demo -- sh -c 'echo hello from a hardened workspace; id; ip link; touch /etc/x'
  bin/wsctl status demo
  bin/wsctl release demo

MSG
bin/workspaced serve &
pids+=($!)
wait "${pids[-1]}"
