# Alarms. The first group is on the backend's own Prometheus metrics, which
# the CloudWatch agent sidecar of the backend task (services module) scrapes
# from /metrics and publishes into var.metrics_namespace with an Environment
# dimension: metric names are the Prometheus names, counters arrive as
# per-scrape deltas (so Sum over a period is the count in it), and the
# dimensions are those the agent's metric_declaration lists
# (services/templates/cloudwatch-agent.json.tftpl; a test checks every
# metric and dimension set used here is declared there and exists in the Go
# code). Runbooks: docs/deploy.md, "Alarms and runbooks".

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
  env_dimension = { Environment = var.environment }
}

resource "aws_cloudwatch_metric_alarm" "run_task_failures" {
  alarm_name          = "${var.name_prefix}-runtask-failures"
  alarm_description   = "RunTask failed at least ${var.run_task_failures_threshold} times in each of two 5-minute periods (ECS failures[] such as RESOURCE:MEMORY, or API errors): workspaces start late or not at all. Runbook: docs/deploy.md#runtask-failures."
  namespace           = var.metrics_namespace
  metric_name         = "workspaced_ecs_run_task_failures_total"
  dimensions          = local.env_dimension
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.run_task_failures_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "warm_pool_empty" {
  count = var.warm_pool_alarm_enabled ? 1 : 0

  alarm_name        = "${var.name_prefix}-warm-pool-empty"
  alarm_description = "No available workspace in the warm pool for 5 minutes although WARM_POOL_MIN_SIZE > 0: every acquire pays a cold RunTask (9-20 s) or waits for EC2 capacity. Runbook: docs/deploy.md#warm-pool-empty."
  namespace         = var.metrics_namespace
  metric_name       = "workspaced_pool_workspaces"
  dimensions        = { Environment = var.environment, state = "available" }
  # Every replica reports the same count (read from Redis): Maximum is "any
  # replica saw an available workspace".
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # No data is the metrics pipeline failing, which metrics-missing reports.
  treat_missing_data = "missing"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
  tags               = var.tags
}

# Running workspaces against capacity (docs/design-basis.md §9.1): every replica exports
# workspaced_workspaces_active, the leader (gc lease) the count its
# reconciler listed and the others 0, so Maximum is the count.
resource "aws_cloudwatch_metric_alarm" "workspaces_active" {
  alarm_name          = "${var.name_prefix}-workspaces-active"
  alarm_description   = "At least ${var.active_workspaces_alarm_threshold} workspace tasks running for 10 minutes: the cluster nears what asg_max_size instances hold, and RunTask will soon wait for capacity or fail. Runbook: docs/deploy.md#workspaces-active."
  namespace           = var.metrics_namespace
  metric_name         = "workspaced_workspaces_active"
  dimensions          = local.env_dimension
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.active_workspaces_alarm_threshold
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# EC2 warm pool exhaustion (docs/design-basis.md §8.1): no stopped, pre-initialised
# instance left, so the next scale-out boots from scratch (minutes). The
# pool shrinks to max_size - desired when the group nears its maximum.
resource "aws_cloudwatch_metric_alarm" "ec2_warm_pool_empty" {
  count = var.ec2_warm_pool_alarm_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-ec2-warm-pool-empty"
  alarm_description   = "The container instances' EC2 warm pool has had no warmed instance for 15 minutes: scale-out boots cold instances, or the group is at asg_max_size. Runbook: docs/deploy.md#ec2-warm-pool-empty."
  namespace           = "AWS/AutoScaling"
  metric_name         = "WarmPoolWarmedCapacity"
  dimensions          = { AutoScalingGroupName = var.autoscaling_group_name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "messages_poisoned" {
  alarm_name          = "${var.name_prefix}-messages-poisoned"
  alarm_description   = "The bus gave up on a message (permanent error or retries exhausted) and sent it to its dead-letter queue: a command or task event was not applied. Runbook: docs/deploy.md#messages-poisoned."
  namespace           = var.metrics_namespace
  metric_name         = "workspaced_bus_messages_poisoned_total"
  dimensions          = local.env_dimension
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Starts that failed their conversation: the agent never became healthy
# (unhealthy), the worker ran out of retries (gave_up), or the runtime refused
# for good (terminal). Retried kinds (capacity, error, stopped, personalise)
# are left out: they recover by themselves.
resource "aws_cloudwatch_metric_alarm" "provisioning_failed" {
  alarm_name          = "${var.name_prefix}-provisioning-failed"
  alarm_description   = "At least ${var.provisioning_failures_threshold} workspace starts failed their conversation in 5 minutes (agent never healthy, retries exhausted, or refused). Runbook: docs/deploy.md#provisioning-failed."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.provisioning_failures_threshold
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "failed"
    expression  = "FILL(unhealthy, 0) + FILL(gave_up, 0) + FILL(terminal, 0)"
    label       = "Workspace starts that failed the conversation"
    return_data = true
  }

  metric_query {
    id = "unhealthy"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "workspaced_workspace_start_failures_total"
      dimensions  = { Environment = var.environment, kind = "unhealthy" }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "gave_up"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "workspaced_workspace_start_failures_total"
      dimensions  = { Environment = var.environment, kind = "gave_up" }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "terminal"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "workspaced_workspace_start_failures_total"
      dimensions  = { Environment = var.environment, kind = "terminal" }
      stat        = "Sum"
      period      = 300
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "provisioning_stuck" {
  alarm_name          = "${var.name_prefix}-provisioning-stuck"
  alarm_description   = "GC stopped workspaces stuck in provisioning (never ready) in the last 15 minutes. Runbook: docs/deploy.md#provisioning-stuck."
  namespace           = var.metrics_namespace
  metric_name         = "workspaced_gc_actions_total"
  dimensions          = { Environment = var.environment, action = "stuck" }
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "reconcile_repairs" {
  alarm_name          = "${var.name_prefix}-reconcile-repairs"
  alarm_description   = "The reconciler repaired Redis at least ${var.reconcile_repairs_threshold} times in 15 minutes: task events are being lost or Redis was reset. Runbook: docs/deploy.md#reconcile-repairs."
  namespace           = var.metrics_namespace
  metric_name         = "workspaced_reconcile_repairs_total"
  dimensions          = local.env_dimension
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.reconcile_repairs_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Heartbeat of the pipeline itself: workspaced_execute_streams_open is an
# unlabelled gauge every backend exports from start, so each replica's agent
# sends one sample per scrape. None for 10 minutes: the agent sidecar, its
# IAM, the metrics log group or the backend's /metrics is broken, and every
# alarm above is blind.
resource "aws_cloudwatch_metric_alarm" "metrics_missing" {
  alarm_name          = "${var.name_prefix}-metrics-missing"
  alarm_description   = "No backend metrics reached CloudWatch for 10 minutes: the alarms on backend metrics are blind. Runbook: docs/deploy.md#metrics-missing."
  namespace           = var.metrics_namespace
  metric_name         = "workspaced_execute_streams_open"
  dimensions          = local.env_dimension
  statistic           = "SampleCount"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = toset(var.dead_letter_queue_names)

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "Messages in ${each.value}: a command or task event failed maxReceiveCount (5) times (or EventBridge could not deliver). Inspect, fix, then redrive (docs/deploy.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "task_events_age" {
  alarm_name          = "${var.name_prefix}-task-events-age"
  alarm_description   = "The oldest ECS task event has waited over ${var.task_events_max_age_seconds} s: the state subscriber is stalled, workspaces never become ready."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.task_events_queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.task_events_max_age_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "command_age" {
  for_each = toset(var.command_queue_names)

  alarm_name          = "${each.value}-age"
  alarm_description   = "The oldest command in ${each.value} has waited over 5 minutes: workers are down or failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 300
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "event_delivery_failures" {
  alarm_name          = "${var.name_prefix}-task-events-delivery-failed"
  alarm_description   = "EventBridge failed to deliver ECS task events to SQS (queue policy?). Events go to the DLQ; the reconciler repairs state."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = var.task_state_change_rule_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "cluster_reservation" {
  for_each = {
    cpu    = "CPUReservation"
    memory = "MemoryReservation"
  }

  alarm_name          = "${var.name_prefix}-cluster-${each.key}-reservation"
  alarm_description   = "Cluster ${each.key} reservation above 95 % for 15 minutes: managed scaling is not keeping up (ASG max reached?)."
  namespace           = "AWS/ECS"
  metric_name         = each.value
  dimensions          = { ClusterName = var.cluster_name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 95
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "backend_utilization" {
  for_each = {
    cpu    = "CPUUtilization"
    memory = "MemoryUtilization"
  }

  alarm_name          = "${var.name_prefix}-backend-${each.key}"
  alarm_description   = "Backend ${each.key} above 90 % for 15 minutes despite autoscaling (max count reached?)."
  namespace           = "AWS/ECS"
  metric_name         = each.value
  dimensions          = { ClusterName = var.cluster_name, ServiceName = var.backend_service_name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 90
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.name_prefix}-api-5xx"
  alarm_description   = "The API answered 5xx more than 10 times in 5 minutes (docs/contracts.md §4.5: bad input is 4xx, never 5xx)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 10
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_backends" {
  alarm_name          = "${var.name_prefix}-unhealthy-backends"
  alarm_description   = "A backend target fails /health/live."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# The egress tier (docs/decisions.md D21) is every workspace's only way to
# registries and MCP servers: with no healthy target, pip/npm and MCP fail
# (closed) in every workspace while Bedrock still works.
resource "aws_cloudwatch_metric_alarm" "egress_tier_down" {
  alarm_name          = "${var.name_prefix}-egress-tier-down"
  alarm_description   = "No healthy egress tier task behind its NLB for 3 minutes: workspaces cannot reach package registries or MCP servers (Bedrock is unaffected). Runbook: docs/operations.md#egress-tier-down."
  namespace           = "AWS/NetworkELB"
  metric_name         = "HealthyHostCount"
  dimensions          = { LoadBalancer = var.egress_nlb_arn_suffix, TargetGroup = var.egress_target_group_arn_suffix }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
