# One dashboard (seed §6.1): workspace state, latency, errors.

locals {
  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title = "Warm pool and RunTask failures", region = var.aws_region, stat = "Maximum", period = 60
        metrics = [
          [var.metrics_namespace, "WarmPoolAvailable", "Environment", var.environment],
          [var.metrics_namespace, "RunTaskFailures", "Environment", var.environment, { stat = "Sum" }],
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
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
