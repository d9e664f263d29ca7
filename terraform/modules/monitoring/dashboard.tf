# One dashboard (docs/design-basis.md §6.1): workspace state, latency, errors. The backend's
# own metrics (var.metrics_namespace) are the Prometheus names the CloudWatch
# agent sidecar publishes (alarms.tf).

locals {
  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 36, width = 12, height = 6
      properties = {
        title = "Running workspaces, EC2 warm pool", region = var.aws_region, stat = "Maximum", period = 60
        metrics = [
          [var.metrics_namespace, "workspaced_workspaces_active", "Environment", var.environment],
          ["AWS/AutoScaling", "WarmPoolWarmedCapacity", "AutoScalingGroupName", var.autoscaling_group_name, { yAxis = "right" }],
        ]
        annotations = { horizontal = [{ label = "workspaces-active alarm", value = var.active_workspaces_alarm_threshold }] }
      }
    },
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title = "Warm pool (workspaces by state)", region = var.aws_region, stat = "Maximum", period = 60
        metrics = [for state in ["available", "starting", "claimed", "reserved"] :
          [var.metrics_namespace, "workspaced_pool_workspaces", "Environment", var.environment, "state", state]
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title = "Cluster reservation (%)", region = var.aws_region, stat = "Average", period = 300
        metrics = [
          ["AWS/ECS", "CPUReservation", "ClusterName", var.cluster_name],
          ["AWS/ECS", "MemoryReservation", "ClusterName", var.cluster_name],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title = "API latency (s) and 5xx", region = var.aws_region, period = 60
        metrics = [
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p99" }],
          ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum", yAxis = "right" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title   = "Queues: oldest message (s)", region = var.aws_region, stat = "Maximum", period = 60
        metrics = [for q in concat(var.command_queue_names, [var.task_events_queue_name]) : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q]]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 12, height = 6
      properties = {
        title   = "Dead-letter queues", region = var.aws_region, stat = "Maximum", period = 60
        metrics = [for q in var.dead_letter_queue_names : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
      }
    },
    {
      type = "metric", x = 12, y = 12, width = 12, height = 6
      properties = {
        title = "Backend CPU / memory (%)", region = var.aws_region, stat = "Average", period = 300
        metrics = [
          ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.backend_service_name],
          ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.backend_service_name],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 18, width = 12, height = 6
      properties = {
        title = "RunTask calls and failures (per minute)", region = var.aws_region, stat = "Sum", period = 60
        metrics = [
          [var.metrics_namespace, "workspaced_ecs_run_task_calls_total", "Environment", var.environment],
          [var.metrics_namespace, "workspaced_ecs_run_task_failures_total", "Environment", var.environment],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 18, width = 12, height = 6
      properties = {
        title = "Warm-pool claims (hit: warm, miss: cold start)", region = var.aws_region, stat = "Sum", period = 300
        metrics = [for result in ["hit", "miss", "unhealthy"] :
          [var.metrics_namespace, "workspaced_pool_claims_total", "Environment", var.environment, "result", result]
        ]
      }
    },
    {
      type = "metric", x = 0, y = 24, width = 12, height = 6
      properties = {
        title = "Workspace start failures by kind", region = var.aws_region, stat = "Sum", period = 300
        metrics = [for kind in ["capacity", "error", "stopped", "personalise", "unhealthy", "gave_up", "terminal"] :
          [var.metrics_namespace, "workspaced_workspace_start_failures_total", "Environment", var.environment, "kind", kind]
        ]
      }
    },
    {
      type = "metric", x = 12, y = 24, width = 12, height = 6
      properties = {
        title = "Poisoned messages, reconciler repairs, stuck workspaces stopped", region = var.aws_region, stat = "Sum", period = 300
        metrics = [
          [var.metrics_namespace, "workspaced_bus_messages_poisoned_total", "Environment", var.environment],
          [var.metrics_namespace, "workspaced_reconcile_repairs_total", "Environment", var.environment],
          [var.metrics_namespace, "workspaced_gc_actions_total", "Environment", var.environment, "action", "stuck"],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 30, width = 12, height = 6
      properties = {
        title = "Execute streams: open, and how they ended", region = var.aws_region, stat = "Sum", period = 300
        metrics = [
          [var.metrics_namespace, "workspaced_execute_streams_open", "Environment", var.environment, { stat = "Maximum", period = 60 }],
          [var.metrics_namespace, "workspaced_execute_outcomes_total", "Environment", var.environment, "outcome", "done", { yAxis = "right" }],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
