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
rm -rf /var/lib/ecs/data/* /var/log/ecs/* /tmp/*.json /tmp/ecs.config /tmp/imds-block.service
cloud-init clean --logs 2>/dev/null || true
