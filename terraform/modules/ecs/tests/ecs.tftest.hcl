# The ECS module under the mocked AWS provider (offline): container
# instances (IMDS, ecs.config), instance refresh, the capacity provider.
# Run: terraform test (docs/deploy.md, "Checks").

mock_provider "aws" {
  mock_resource "aws_launch_template" {
    defaults = {
      id             = "lt-0a1b2c3d4e5f60000"
      arn            = "arn:aws:ec2:ap-northeast-1:123456789012:launch-template/lt-0a1b2c3d4e5f60000"
      latest_version = 1
    }
  }
  mock_resource "aws_autoscaling_group" {
    defaults = {
      arn = "arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/workspaced-test-ecs-1"
    }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = {
      arn = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/workspaced-test"
    }
  }
}

variables {
  name_prefix                 = "workspaced-test"
  cluster_name                = "workspaced-test"
  private_subnet_ids          = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
  instances_security_group_id = "sg-0a1b0000000000004"
  instance_profile_arn        = "arn:aws:iam::123456789012:instance-profile/workspaced-test-ecs-instance"
  ami_id                      = "ami-0a1b2c3d4e5f60000"
  instance_type               = "c6i.xlarge"
  warm_pool_min_size          = 1
}

run "instances" {
  assert {
    condition = (aws_launch_template.this.metadata_options[0].http_tokens == "required"
      && aws_launch_template.this.metadata_options[0].http_put_response_hop_limit == 1
    && aws_launch_template.this.metadata_options[0].http_endpoint == "enabled")
    error_message = "IMDS must be IMDSv2 only with a hop limit of 1 (containers cannot reach it)."
  }

  assert {
    condition     = strcontains(base64decode(aws_launch_template.this.user_data), "\nECS_AWSVPC_BLOCK_IMDS=true\n")
    error_message = "awsvpc tasks must be blocked from IMDS (ECS_AWSVPC_BLOCK_IMDS)."
  }

  assert {
    condition     = strcontains(base64decode(aws_launch_template.this.user_data), "\nECS_CLUSTER=workspaced-test\n")
    error_message = "The instances must join this cluster."
  }

  # Trunking is the account setting awsvpcTrunking (cluster.tf), not an
  # agent variable; ECS_ENABLE_TASK_ENI_TRUNKING does not exist.
  assert {
    condition     = !strcontains(base64decode(aws_launch_template.this.user_data), "TRUNKING")
    error_message = "ecs.config must not carry the non-existent ECS_ENABLE_TASK_ENI_TRUNKING."
  }

  assert {
    condition     = aws_ecs_account_setting_default.trunking[0].name == "awsvpcTrunking" && aws_ecs_account_setting_default.trunking[0].value == "enabled"
    error_message = "ENI trunking is the account setting awsvpcTrunking."
  }

  assert {
    condition     = alltrue([for b in aws_launch_template.this.block_device_mappings : b.ebs[0].encrypted == "true"])
    error_message = "Root volumes must be encrypted."
  }
}

run "warm_pool_metrics" {
  assert {
    condition     = contains(aws_autoscaling_group.this.enabled_metrics, "WarmPoolWarmedCapacity") && aws_autoscaling_group.this.metrics_granularity == "1Minute"
    error_message = "The group must publish WarmPoolWarmedCapacity (the EC2 warm-pool alarm reads it)."
  }

  assert {
    condition     = aws_autoscaling_group.this.warm_pool[0].min_size == var.warm_pool_min_size && aws_autoscaling_group.this.warm_pool[0].pool_state == "Stopped"
    error_message = "The EC2 warm pool keeps warm_pool_min_size stopped instances."
  }
}

run "instance_refresh_replaces_protected_instances" {
  # Managed termination protection marks every instance running a task
  # (warm-pool workspaces always run) as protected from scale-in; with the
  # default Wait a refresh never finishes.
  assert {
    condition     = aws_autoscaling_group.this.instance_refresh[0].preferences[0].scale_in_protected_instances == "Refresh"
    error_message = "Instance refresh must replace scale-in protected instances (managed draining moves their tasks), not wait for them."
  }

  assert {
    condition     = aws_autoscaling_group.this.protect_from_scale_in && aws_ecs_capacity_provider.this.auto_scaling_group_provider[0].managed_termination_protection == "ENABLED" && aws_ecs_capacity_provider.this.auto_scaling_group_provider[0].managed_draining == "ENABLED"
    error_message = "Managed termination protection needs protect_from_scale_in; managed draining moves tasks off replaced instances."
  }
}

run "capacity_provider_comes_from_the_association" {
  # The service and the runtime may use the provider only once it is
  # associated with the cluster: the output is read from the association
  # (that it is a reference to the association, which values cannot show,
  # is TestCapacityProviderNameComesFromTheAssociation in terraform/).
  assert {
    condition     = output.capacity_provider_name == one(aws_ecs_cluster_capacity_providers.this.capacity_providers)
    error_message = "capacity_provider_name must come from aws_ecs_cluster_capacity_providers."
  }

  assert {
    condition     = aws_ecs_cluster_capacity_providers.this.cluster_name == aws_ecs_cluster.this.name && [for s in aws_ecs_cluster_capacity_providers.this.default_capacity_provider_strategy : s.capacity_provider] == [aws_ecs_capacity_provider.this.name]
    error_message = "The cluster's default strategy is the one capacity provider."
  }
}
