variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "environment" {
  description = "Environment name (the Environment dimension of the backend's metrics)."
  type        = string
}

variable "aws_region" {
  description = "Region of the deployment."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the ECS log groups."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "alarm_email" {
  description = "Optional e-mail subscribed to the alarm topic (confirm the subscription mail)."
  type        = string
  default     = null
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the CloudWatch agent sidecar publishes the backend's Prometheus metrics into (services module, same value)."
  type        = string
  default     = "Workspaced"
}

variable "metrics_log_retention_days" {
  description = "Retention of the metrics (EMF) log group: the raw scrapes, for Logs Insights drill-down. The metrics extracted from them follow CloudWatch's own retention."
  type        = number
  default     = 7

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30], var.metrics_log_retention_days)
    error_message = "metrics_log_retention_days must be one of 1, 3, 5, 7, 14, 30."
  }
}

variable "run_task_failures_threshold" {
  description = "RunTask failures per 5 minutes, two periods in a row, that raise the runtask-failures alarm."
  type        = number
  default     = 5

  validation {
    condition     = var.run_task_failures_threshold >= 1
    error_message = "run_task_failures_threshold must be at least 1."
  }
}

variable "provisioning_failures_threshold" {
  description = "Workspace starts per 5 minutes that failed their conversation (unhealthy, gave_up, terminal) that raise the provisioning-failed alarm."
  type        = number
  default     = 3

  validation {
    condition     = var.provisioning_failures_threshold >= 1
    error_message = "provisioning_failures_threshold must be at least 1."
  }
}

variable "reconcile_repairs_threshold" {
  description = "Reconciler repairs per 15 minutes that raise the reconcile-repairs alarm (a few are normal: lost or late task events)."
  type        = number
  default     = 20

  validation {
    condition     = var.reconcile_repairs_threshold >= 1
    error_message = "reconcile_repairs_threshold must be at least 1."
  }
}

variable "cluster_name" {
  description = "Name of the ECS cluster (ecs module)."
  type        = string
}

variable "backend_service_name" {
  description = "Name of the backend ECS service (services module)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the ALB (services module)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the backend target group (services module)."
  type        = string
}

variable "egress_nlb_arn_suffix" {
  description = "ARN suffix of the egress tier's NLB (services module)."
  type        = string
}

variable "egress_target_group_arn_suffix" {
  description = "ARN suffix of the egress tier's target group (services module)."
  type        = string
}

variable "command_queue_names" {
  description = "Names of the command queues (messaging module)."
  type        = list(string)
}

variable "task_events_queue_name" {
  description = "Name of the task-events queue (messaging module)."
  type        = string
}

variable "dead_letter_queue_names" {
  description = "Names of every dead-letter queue (messaging module)."
  type        = list(string)
}

variable "task_state_change_rule_name" {
  description = "Name of the EventBridge task-state-change rule (messaging module)."
  type        = string
}

variable "warm_pool_alarm_enabled" {
  description = "Alarm when the warm pool has no available workspace for 5 minutes (false when WARM_POOL_MIN_SIZE is 0: an empty pool is then normal)."
  type        = bool
  default     = true
}

variable "autoscaling_group_name" {
  description = "Auto Scaling group of the container instances (ecs module): its EC2 warm pool is watched."
  type        = string
}

variable "ec2_warm_pool_alarm_enabled" {
  description = "Alarm when the container instances' EC2 warm pool has no warmed instance (set when the environment has one)."
  type        = bool
  default     = true
}

variable "active_workspaces_alarm_threshold" {
  description = "Running workspaces (workspaced_workspaces_active) at which the workspaces-active alarm fires: about 80 % of what asg_max_size instances can hold (trunked ENIs per instance type), so capacity is raised before RunTask fails."
  type        = number

  validation {
    condition     = var.active_workspaces_alarm_threshold >= 1
    error_message = "active_workspaces_alarm_threshold must be at least 1."
  }
}

variable "task_events_max_age_seconds" {
  description = "Alarm when the oldest task event waits longer than this (state subscriber stalled)."
  type        = number
  default     = 300

  validation {
    condition     = var.task_events_max_age_seconds >= 60
    error_message = "task_events_max_age_seconds must be at least 60."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
