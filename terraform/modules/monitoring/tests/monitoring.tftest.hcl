# The monitoring module under the mocked AWS provider (offline): the alarms
# the seed asks for (running workspaces, EC2 warm-pool exhaustion) and the
# dashboard. That the backend's metric names exist in the Go code and are
# declared to the CloudWatch agent is terraform/metrics_test.go.
# Run: terraform test (docs/deploy.md, "Checks").

mock_provider "aws" {
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:ap-northeast-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:ap-northeast-1:123456789012:workspaced-test-alarms"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:user/test"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
}

variables {
  name_prefix                       = "workspaced-test"
  environment                       = "test"
  aws_region                        = "ap-northeast-1"
  cluster_name                      = "workspaced-test"
  backend_service_name              = "workspaced-test-backend"
  alb_arn_suffix                    = "app/workspaced-test-api/0123456789abcdef"
  target_group_arn_suffix           = "targetgroup/workspaced-test-backend/0123456789abcdef"
  egress_nlb_arn_suffix             = "net/workspaced-test-egress/0123456789abcdef"
  egress_target_group_arn_suffix    = "targetgroup/workspaced-test-egress/0123456789abcdef"
  command_queue_names               = ["test-workspace-requested", "test-workspace-released"]
  task_events_queue_name            = "test-workspace-task-events"
  dead_letter_queue_names           = ["test-workspace-requested-dlq", "test-workspace-released-dlq", "test-workspace-task-events-dlq"]
  task_state_change_rule_name       = "workspaced-test-task-state-change"
  autoscaling_group_name            = "workspaced-test-ecs-20260101000000000000000001"
  ec2_warm_pool_alarm_enabled       = true
  active_workspaces_alarm_threshold = 40
}

run "running_workspaces_alarm" {
  assert {
    condition = (aws_cloudwatch_metric_alarm.workspaces_active.namespace == var.metrics_namespace
      && aws_cloudwatch_metric_alarm.workspaces_active.metric_name == "workspaced_workspaces_active"
      && aws_cloudwatch_metric_alarm.workspaces_active.dimensions == tomap({ Environment = var.environment })
      && aws_cloudwatch_metric_alarm.workspaces_active.statistic == "Maximum"
      && aws_cloudwatch_metric_alarm.workspaces_active.comparison_operator == "GreaterThanOrEqualToThreshold"
    && aws_cloudwatch_metric_alarm.workspaces_active.threshold == var.active_workspaces_alarm_threshold)
    error_message = "An alarm must watch the running workspace count (workspaced_workspaces_active, Maximum across replicas) against the capacity threshold."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.workspaces_active.alarm_actions == toset([aws_sns_topic.alarms.arn])
    error_message = "The alarm must notify the alarm topic."
  }
}

run "ec2_warm_pool_exhaustion_alarm" {
  assert {
    condition = (aws_cloudwatch_metric_alarm.ec2_warm_pool_empty[0].namespace == "AWS/AutoScaling"
      && aws_cloudwatch_metric_alarm.ec2_warm_pool_empty[0].metric_name == "WarmPoolWarmedCapacity"
      && aws_cloudwatch_metric_alarm.ec2_warm_pool_empty[0].dimensions == tomap({ AutoScalingGroupName = var.autoscaling_group_name })
      && aws_cloudwatch_metric_alarm.ec2_warm_pool_empty[0].comparison_operator == "LessThanThreshold"
    && aws_cloudwatch_metric_alarm.ec2_warm_pool_empty[0].threshold == 1)
    error_message = "An alarm must fire when the EC2 warm pool has no warmed instance left."
  }
}

run "no_ec2_warm_pool_no_alarm" {
  variables {
    ec2_warm_pool_alarm_enabled = false
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.ec2_warm_pool_empty) == 0
    error_message = "Without an EC2 warm pool there is nothing to exhaust."
  }
}

run "dashboard_shows_active_workspaces" {
  assert {
    condition = anytrue([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
    anytrue([for m in w.properties.metrics : m[0] == var.metrics_namespace && m[1] == "workspaced_workspaces_active"])])
    error_message = "The dashboard must show workspaced_workspaces_active."
  }

  assert {
    condition = anytrue([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
    anytrue([for m in w.properties.metrics : m[0] == "AWS/AutoScaling" && m[1] == "WarmPoolWarmedCapacity"])])
    error_message = "The dashboard must show the EC2 warm pool."
  }
}
