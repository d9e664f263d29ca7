#!/bin/sh
# Runs as root on the Packer build instance (see workspaced-ecs.pkr.hcl).
set -eu

dnf -y update --security
command -v iptables >/dev/null 2>&1 || dnf -y install iptables-nft

# Docker: the workspace seccomp profile as every container's default.
install -d -m 0755 /etc/docker/seccomp
install -m 0644 /tmp/workspace-seccomp.json /etc/docker/seccomp/workspace-seccomp.json
install -m 0644 /tmp/daemon.json /etc/docker/daemon.json
python3 -c 'import json,sys; json.load(open(sys.argv[1])); json.load(open(sys.argv[2]))' \
  /etc/docker/daemon.json /etc/docker/seccomp/workspace-seccomp.json

# ECS agent configuration (the cluster name comes from user data).
install -d -m 0755 /etc/ecs
install -m 0644 /tmp/ecs.config /etc/ecs/ecs.config

# Instance limits (docs/deploy.md "PIDs"): the PID space and the kernel's
# thread table far above the nproc budget all workspaces share (uid 1000,
# the task definition's nproc ulimit), so a workspace at that budget can
# never starve the ECS agent, dockerd or the proxies of PIDs.
cat >/etc/sysctl.d/90-workspaced.conf <<'SYSCTL'
kernel.pid_max = 4194304
SYSCTL
sysctl -p /etc/sysctl.d/90-workspaced.conf
test "$(cat /proc/sys/kernel/threads-max)" -ge 65536

# AppArmor: the workspace profile the task definition names
# (apparmor:workspace-container). ECS_APPARMOR_CAPABLE=true in ecs.config
# lets ECS place such tasks. A kernel without AppArmor cannot enforce it:
# Docker then starts the container unconfined, and workspace-selftest fails
# hardening.apparmor after the deploy (docs/deploy.md).
install -d -m 0755 /etc/apparmor.d
install -m 0644 /tmp/workspace-container /etc/apparmor.d/workspace-container
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] && command -v apparmor_parser >/dev/null 2>&1; then
  apparmor_parser -r -W /etc/apparmor.d/workspace-container
  systemctl enable apparmor.service 2>/dev/null || true
else
  echo "WARNING: this kernel has no AppArmor (or no apparmor_parser): the workspace profile cannot be enforced" >&2
fi

# IMDS block for containers, applied whenever Docker starts.
install -m 0644 /tmp/imds-block.service /etc/systemd/system/imds-block.service
systemctl daemon-reload
systemctl enable imds-block.service

systemctl restart docker
# The profile must load: a broken one would stop every task on the instance.
docker info --format '{{json .SecurityOptions}}' | grep -q 'name=seccomp'
systemctl start imds-block.service
iptables -C DOCKER-USER -i docker+ -d 169.254.169.254/32 -j DROP

# Pre-pull images so prefer-cached starts tasks without a registry round trip
# (also shares base layers with newer tags of the same images).
if [ -n "${CACHED_IMAGES:-}" ]; then
  registries=$(for i in $CACHED_IMAGES; do echo "${i%%/*}"; done | sort -u)
  for r in $registries; do
    aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$r"
  done
  for i in $CACHED_IMAGES; do
    docker pull "$i"
  done
  for r in $registries; do docker logout "$r"; done
  rm -rf /root/.docker
fi

# No agent state or instance identity in the AMI.
systemctl stop ecs 2>/dev/null || true
rm -rf /var/lib/ecs/data/* /var/log/ecs/* /tmp/*.json /tmp/ecs.config /tmp/imds-block.service /tmp/workspace-container
cloud-init clean --logs 2>/dev/null || true
