# ECS cluster with one EC2 capacity provider (docs/design-basis.md §3.3 D, §6.1): an Auto
# Scaling group of the custom AMI, a stopped warm pool, managed scaling at 85 %.

resource "aws_ecs_cluster" "this" {
  name = var.cluster_name

  setting {
    name  = "containerInsights"
    value = var.enable_container_insights ? "enabled" : "disabled"
  }

  tags = var.tags
}

# ENI trunking (docs/design-basis.md §4.6) is an account setting of the principal that
# registers the instances; setting the account default covers the instance
# role. Without it a c6i.2xlarge runs 2 awsvpc tasks instead of ~22.
resource "aws_ecs_account_setting_default" "trunking" {
  count = var.manage_trunking_account_setting ? 1 : 0

  name  = "awsvpcTrunking"
  value = "enabled"
}

resource "aws_ecs_capacity_provider" "this" {
  name = "${var.name_prefix}-ec2"

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.this.arn
    managed_termination_protection = "ENABLED"
    managed_draining               = "ENABLED"

    managed_scaling {
      status                    = "ENABLED"
      target_capacity           = var.capacity_target_percent
      minimum_scaling_step_size = 1
      maximum_scaling_step_size = 2
      instance_warmup_period    = 120
    }
  }

  tags = var.tags
}

# Workspace tasks must be started through this strategy (RunTask without
# launchType): only then does a task waiting for capacity make managed scaling
# add instances; with launchType EC2, RunTask fails with RESOURCE:MEMORY.
resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = [aws_ecs_capacity_provider.this.name]

  default_capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.this.name
    weight            = 1
    base              = 0
  }
}
