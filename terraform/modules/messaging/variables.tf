variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "queue_prefix" {
  description = "Prefix prepended to the queue names of deploy/names.json (the backend's SQS_QUEUE_PREFIX), e.g. \"staging-\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{0,30}$", var.queue_prefix))
    error_message = "queue_prefix may hold only letters, digits, '-' and '_' (at most 30 characters)."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster whose \"ECS Task State Change\" events the rule forwards to the task-events queue."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/.+$", var.cluster_arn))
    error_message = "cluster_arn must be an ECS cluster ARN."
  }
}

variable "command_visibility_timeout_seconds" {
  description = "SQS visibility timeout of the command queues. Must exceed the worker's longest handler time including retries (120 s: RunTask, wait, retry backoff); watermill-aws has no visibility heartbeat."
  type        = number
  default     = 120

  validation {
    condition     = var.command_visibility_timeout_seconds >= 30 && var.command_visibility_timeout_seconds <= 43200
    error_message = "command_visibility_timeout_seconds must be between 30 and 43200."
  }
}

variable "task_events_visibility_timeout_seconds" {
  description = "SQS visibility timeout of the task-events queue. Same as the command queues: the backend's bus checks every queue it consumes against one SQS_VISIBILITY_TIMEOUT (120 s)."
  type        = number
  default     = 120

  validation {
    condition     = var.task_events_visibility_timeout_seconds >= 10 && var.task_events_visibility_timeout_seconds <= 43200
    error_message = "task_events_visibility_timeout_seconds must be between 10 and 43200."
  }
}

variable "max_receive_count" {
  description = "Receives before a message moves to its dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "workspace_files_expiration_days" {
  description = "Days after which a saved workspace archive (current version) expires from the workspace-files bucket."
  type        = number
  default     = 90

  validation {
    condition     = var.workspace_files_expiration_days >= 1
    error_message = "workspace_files_expiration_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced (noncurrent) workspace archive is kept for recovery."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "force_destroy_bucket" {
  description = "Allow terraform destroy to delete a non-empty workspace-files bucket (staging only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
