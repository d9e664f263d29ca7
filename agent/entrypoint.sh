#!/bin/sh
# Entrypoint of the production workspace image (agent/Dockerfile).
#
# It runs as appuser (1000:1000), never as root: the ECS task definition
# sets user 1000:1000, and a non-root process has an empty effective
# capability set, so CapAdd CHOWN cannot let it chown anything. It does not
# need to: an ECS tmpfs (which takes no uid/gid/mode options) is root's and
# takes the mode of the image's directory, and the image ships /workspace,
# /home/appuser and /home/appuser/.cache with mode 1777, so appuser can write
# there and owns what it creates. Under Docker the runtime mounts the tmpfs
# with uid=1000,gid=1000.
# This script checks that, prepares HOME, and execs the agent as PID 1 (it
# reaps orphans and kills strays after each run).
set -eu
umask 022
for d in /workspace /home/appuser /tmp; do
	if [ ! -d "$d" ] || [ ! -w "$d" ]; then
		echo "workspace-entrypoint: $d is not a directory writable by uid $(id -u)" >&2
		exit 1
	fi
done
mkdir -p /home/appuser/.claude /home/appuser/.cache
exec /usr/local/bin/workspace-agent "$@"
