#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages workspaced needs that are missing, and
# nothing else. One script for `make run` (a developer's machine) and
# `.ci/run` (CI), so both install the same things the same way.
#
#   scripts/install-deps.sh run   busybox-static redis-server (make run, make images)
#   scripts/install-deps.sh ci    the above and awscli iproute2 nginx apparmor (make test)
#
# It asks for sudo when not root. Set INSTALL_DEPS=no to only report what is
# missing (exit 1 if anything is). Go and Docker are not installed: the
# README says they are the prerequisites.
set -euo pipefail

profile=${1:-run}
case "$profile" in
  run) pkgs=(busybox-static redis-server) ;;
  ci) pkgs=(redis-server busybox-static awscli iproute2 nginx apparmor) ;;
  *) echo "usage: $0 run|ci" >&2; exit 2 ;;
esac

need=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing packages: ${need[*]}; this script installs them with apt-get (Debian/Ubuntu) only: install them by hand" >&2
  exit 1
fi
if [ "${INSTALL_DEPS:-yes}" = no ]; then
  echo "missing packages: ${need[*]} (INSTALL_DEPS=no: not installing)" >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "missing packages: ${need[*]}; not root and no sudo: run as root: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
  echo "installing ${need[*]} with sudo (apt-get)" >&2
else
  echo "installing ${need[*]} (apt-get)" >&2
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
