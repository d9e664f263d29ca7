# Custom ECS container instance AMI (docs/design-basis.md §6.2): the ECS-optimized Amazon
# Linux 2023 AMI plus
#   - Docker's default seccomp profile = deploy/seccomp/workspace-seccomp.json,
#     the same file the Docker runtime compiles in (ECS task definitions
#     cannot name a seccomp profile, docs/design-basis.md §4.5);
#   - /etc/ecs/ecs.config: ENI trunking, IMDS blocked for awsvpc tasks,
#     prefer-cached images, warm-pool aware, privileged containers refused;
#   - an iptables rule dropping container traffic to IMDS (defence in depth);
#   - the workspace AppArmor profile (deploy/apparmor), loaded at boot;
#   - instance limits sized for workspaces (kernel.pid_max; see docs/deploy.md
#     "PIDs" for the nproc budget of uid 1000);
#   - the current images pre-pulled, so prefer-cached starts without a pull.
# The cluster name is not baked in: the launch template's user data adds it.
#
#   packer init terraform/packer
#   packer build -var aws_region=ap-northeast-1 \
#     -var 'cached_images=["<acct>.dkr.ecr.<region>.amazonaws.com/workspaced/workspace-base:<sha>", ...]' \
#     terraform/packer
# CI rebuilds it monthly and on security patches (docs/design-basis.md §12 Phase 5).

packer {
  required_version = ">= 1.10.0"

  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "aws_region" {
  type        = string
  description = "Region to build in (the AMI is regional)."
  default     = "ap-northeast-1"
}

variable "instance_type" {
  type        = string
  description = "Build instance type (x86_64: the AMI serves c6i instances)."
  default     = "c6i.large"
}

variable "ami_name_prefix" {
  type        = string
  description = "AMI name prefix; the ecs module picks the newest AMI with it."
  default     = "workspaced-ecs-al2023-"
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance (needs a route to ECR and the dnf repositories). Empty: the default VPC."
  default     = ""
}

variable "build_instance_profile" {
  type        = string
  description = "Instance profile of the build instance; needs ECR pull on cached_images. Empty when cached_images is empty."
  default     = ""
}

variable "cached_images" {
  type        = list(string)
  description = "ECR images pulled into the AMI (workspace-base, credential-proxy) so tasks start from cache."
  default     = []
}

data "amazon-parameterstore" "ecs_al2023" {
  region = var.aws_region
  name   = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
}

locals {
  build_time = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "ecs" {
  region               = var.aws_region
  source_ami           = data.amazon-parameterstore.ecs_al2023.value
  instance_type        = var.instance_type
  subnet_id            = var.subnet_id
  iam_instance_profile = var.build_instance_profile
  ssh_username         = "ec2-user"
  ami_name             = "${var.ami_name_prefix}${local.build_time}"
  ami_description      = "workspaced ECS container instance (ECS-optimized AL2023, workspace seccomp default, trunking, IMDS blocked)"
  encrypt_boot         = true
  imds_support         = "v2.0"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 30
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  tags = {
    Name       = "${var.ami_name_prefix}${local.build_time}"
    Project    = "workspaced"
    SourceAMI  = "{{ .SourceAMI }}"
    BuildTime  = local.build_time
    SeccompSrc = "deploy/seccomp/workspace-seccomp.json"
  }
}

build {
  sources = ["source.amazon-ebs.ecs"]

  # The one seccomp profile of the repository, not a copy.
  provisioner "file" {
    source      = "${path.root}/../../deploy/seccomp/workspace-seccomp.json"
    destination = "/tmp/workspace-seccomp.json"
  }

  # The workspace AppArmor profile the task definition names.
  provisioner "file" {
    source      = "${path.root}/../../deploy/apparmor/workspace-container"
    destination = "/tmp/workspace-container"
  }

  provisioner "file" {
    source      = "${path.root}/files/daemon.json"
    destination = "/tmp/daemon.json"
  }

  provisioner "file" {
    source      = "${path.root}/files/ecs.config"
    destination = "/tmp/ecs.config"
  }

  provisioner "file" {
    source      = "${path.root}/files/imds-block.service"
    destination = "/tmp/imds-block.service"
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/setup.sh"
    execute_command  = "sudo -E sh -eu '{{ .Path }}'"
    environment_vars = ["AWS_REGION=${var.aws_region}", "CACHED_IMAGES=${join(" ", var.cached_images)}"]
  }
}
