data "aws_ami" "custom" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["self"]

  filter {
    name   = "name"
    values = ["${var.ami_name_prefix}*"]
  }

  filter {
    name   = "state"
    values = ["available"]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.custom[0].id

  # The AMI's /etc/ecs/ecs.config holds everything but the cluster (docs/design-basis.md §6.2);
  # repeating the security-relevant lines here keeps them on even if an older
  # AMI lacks them. ENI trunking is not an agent setting: it is the account
  # setting awsvpcTrunking (cluster.tf); the agent's ECS_ENABLE_HIGH_DENSITY_ENI
  # defaults to true.
  user_data = <<-EOT
    #!/bin/bash
    set -euo pipefail
    cat >>/etc/ecs/ecs.config <<'CFG'
    ECS_CLUSTER=${var.cluster_name}
    ECS_AWSVPC_BLOCK_IMDS=true
    ECS_WARM_POOLS_CHECK=true
    ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
    CFG
  EOT
}

resource "aws_launch_template" "this" {
  name_prefix   = "${var.name_prefix}-ecs-"
  image_id      = local.ami_id
  instance_type = var.instance_type
  user_data     = base64encode(local.user_data)

  iam_instance_profile {
    arn = var.instance_profile_arn
  }

  vpc_security_group_ids = [var.instances_security_group_id]

  # IMDS (docs/design-basis.md §9.2 risk 2): v2 only, and a hop limit of 1 so a container
  # behind a bridge or an awsvpc namespace cannot reach it.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name_prefix}-ecs" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = var.tags
  }

  tags = var.tags
}

resource "aws_autoscaling_group" "this" {
  name_prefix         = "${var.name_prefix}-ecs-"
  vpc_zone_identifier = var.private_subnet_ids
  min_size            = var.asg_min_size
  max_size            = var.asg_max_size
  # desired_capacity belongs to the capacity provider's managed scaling.
  health_check_type     = "EC2"
  protect_from_scale_in = true
  # Group metrics for the EC2 warm-pool alarm and the dashboard
  # (monitoring module).
  metrics_granularity = "1Minute"
  enabled_metrics = [
    "GroupDesiredCapacity", "GroupInServiceInstances", "GroupMaxSize",
    "WarmPoolWarmedCapacity", "WarmPoolMinSize", "WarmPoolDesiredCapacity",
  ]

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "warm_pool" {
    for_each = var.warm_pool_min_size > 0 ? [1] : []

    content {
      pool_state = "Stopped"
      min_size   = var.warm_pool_min_size

      instance_reuse_policy {
        reuse_on_scale_in = true
      }
    }
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
      # Managed termination protection marks every instance running a task
      # as protected from scale-in, and warm-pool workspaces always run: with
      # the default (Wait) a refresh stalls. Refresh replaces them; managed
      # draining moves their tasks first.
      scale_in_protected_instances = "Refresh"
    }
  }

  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  dynamic "tag" {
    for_each = var.tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}
