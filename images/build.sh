#!/usr/bin/env bash
# Builds the local images FROM scratch, with no registry:
#
#   workspaced/workspace:dev        static workspace-agent (ENTRYPOINT) and
#                                   workspace-selftest, static busybox with its
#                                   applets, appuser 1000:1000
#   workspaced/workspace:test       the above plus internal/fakeclaude as
#                                   /usr/local/bin/claude
#   workspaced/credential-proxy:dev built when images/credential-proxy/Dockerfile
#                                   and cmd/credential-proxy exist; its build
#                                   context holds the static binary
#                                   `credential-proxy` and etc/passwd, etc/group
#                                   (nonroot 65532 and appuser 1000)
#
# IMAGE_TAG_PREFIX is prepended to every tag (IMAGE_TAG_PREFIX=selftest-
# builds workspaced/workspace:selftest-dev, ...): a worktree can test its own
# images without replacing the shared ones.
# Binaries and build contexts go to images/.build/ (git-ignored).
# Needs: go, docker, Debian's busybox-static (/bin/busybox), GNU tar.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/images/.build${IMAGE_TAG_PREFIX:+/$IMAGE_TAG_PREFIX}
BUSYBOX=${BUSYBOX:-/bin/busybox}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
TAG=${IMAGE_TAG_PREFIX:-}
export DOCKER_BUILDKIT=0 # the legacy builder: no buildx plugin needed

if [ ! -x "$BUSYBOX" ]; then
  echo "images: $BUSYBOX missing: apt-get install -y busybox-static" >&2
  exit 1
fi
if ! "$BUSYBOX" --list-full >/dev/null 2>&1; then
  echo "images: $BUSYBOX does not list its applets (not busybox-static?)" >&2
  exit 1
fi

gobuild() { # gobuild <out> <pkg> [ldflags]
  CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w ${3:-}" -o "$1" "$2"
}

rm -rf "$OUT/workspace"
mkdir -p "$OUT/workspace"
ctx=$OUT/workspace

echo "== build binaries"
gobuild "$ctx/workspace-agent" ./cmd/workspace-agent "-X main.version=$VERSION"
gobuild "$ctx/workspace-selftest" ./cmd/workspace-selftest
gobuild "$ctx/claude" ./internal/fakeclaude

echo "== workspace root filesystem"
# root.tar: owned by root. user.tar: the directories appuser writes. The
# Dockerfile ADDs both; ADD keeps the owners recorded in a local tar.
fs=$ctx/rootfs
mkdir -p "$fs"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,var,tmp,var/tmp,run,home,var/run}
chmod 1777 "$fs/tmp" "$fs/var/tmp"
chmod 0700 "$fs/root"
cp "$BUSYBOX" "$fs/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$fs/$(dirname "$applet")"
  ln -sf /bin/busybox "$fs/$applet"
done
cat >"$fs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
appuser:x:1000:1000:appuser:/home/appuser:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$fs/etc/group" <<'GROUP'
root:x:0:
appuser:x:1000:
nogroup:x:65534:
GROUP
printf 'hosts: files\n' >"$fs/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$fs/etc/hosts"
tar --numeric-owner --owner=0 --group=0 -C "$fs" -cf "$ctx/root.tar" .

ufs=$ctx/userfs
mkdir -p "$ufs/workspace" "$ufs/home/appuser/.cache" "$ufs/var/run/ws"
# 1777: a tmpfs mounted without uid/gid/mode options (ECS task definitions
# cannot give them) takes the mode of the image's directory; appuser must be
# able to write there. The Docker runtime's own mount options override it.
chmod 1777 "$ufs/workspace" "$ufs/home/appuser" "$ufs/home/appuser/.cache"
chmod 0770 "$ufs/var/run/ws"
tar --numeric-owner --owner=1000 --group=1000 -C "$ufs" -cf "$ctx/user.tar" \
  ./workspace ./home/appuser ./var/run/ws
rm -rf "$fs" "$ufs"

echo "== docker build workspaced/workspace:${TAG}dev, :${TAG}test"
docker build -q -f images/workspace/Dockerfile --target dev -t "workspaced/workspace:${TAG}dev" "$ctx"
docker build -q -f images/workspace/Dockerfile --target test -t "workspaced/workspace:${TAG}test" "$ctx"

if [ -f images/credential-proxy/Dockerfile ] && [ -d cmd/credential-proxy ]; then
  echo "== docker build workspaced/credential-proxy:${TAG}dev"
  pctx=$OUT/credential-proxy
  rm -rf "$pctx"
  mkdir -p "$pctx/etc"
  gobuild "$pctx/credential-proxy" ./cmd/credential-proxy "-X main.version=$VERSION"
  cat >"$pctx/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
appuser:x:1000:1000:appuser:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
PASSWD
  cat >"$pctx/etc/group" <<'GROUP'
root:x:0:
appuser:x:1000:
nonroot:x:65532:
GROUP
  docker build -q -f images/credential-proxy/Dockerfile -t "workspaced/credential-proxy:${TAG}dev" "$pctx"
else
  echo "== skip workspaced/credential-proxy:dev (images/credential-proxy/Dockerfile or cmd/credential-proxy missing)"
fi
echo "== images built"
