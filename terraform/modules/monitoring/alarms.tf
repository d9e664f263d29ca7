# Alarms (issue: RunTask failures, DLQ depth, pool empty, task-events age,
# CPU/memory). RunTaskFailures and WarmPoolAvailable are custom metrics the
# backend publishes in var.metrics_namespace with dimension Environment
# (docs/deploy.md, "Metrics the backend must publish").

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
  env_dimension = { Environment = var.environment }
}

resource "aws_cloudwatch_metric_alarm" "run_task_failures" {
  alarm_name          = "${var.name_prefix}-runtask-failures"
  alarm_description   = "RunTask returned failures (RESOURCE:*, AGENT, ...) or errors: workspaces cannot start. Check capacity provider scaling and the ECS events of the cluster."
  namespace           = var.metrics_namespace
  metric_name         = "RunTaskFailures"
  dimensions          = local.env_dimension
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "warm_pool_empty" {
  count = var.warm_pool_alarm_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-warm-pool-empty"
  alarm_description   = "No ready workspace in the warm pool for 5 minutes: every acquire pays a cold RunTask (9-20 s) or waits for EC2 capacity."
  namespace           = var.metrics_namespace
  metric_name         = "WarmPoolAvailable"
  dimensions          = local.env_dimension
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # No data means the backend is not reporting: treat as empty.
  treat_missing_data = "breaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
  tags               = var.tags
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
  alarm_description   = "The API answered 5xx more than 10 times in 5 minutes (DESIGN §4.5: bad input is 4xx, never 5xx)."
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
