variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "aws_region" {
  description = "Region of the deployment (awslogs region)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "cpu_architecture" {
  description = "CPU architecture of the container instances and images (X86_64 for c6i, ARM64 for c7g)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "execution_role_arn" {
  description = "ECS task execution role: image pulls, awslogs, SSM/Secrets Manager secrets. The only role iam:PassRole allows the backend to pass."
  type        = string
}

# --- workspace task (docs/design-basis.md §4.2) -------------------------------------------

variable "workspace_agent_image" {
  description = "Image of the workspace-agent container (ECR URI with an immutable tag or digest)."
  type        = string
}

variable "credential_proxy_image" {
  description = "Image of the credential-proxy sidecar (ECR URI with an immutable tag or digest)."
  type        = string
}

variable "bedrock_region" {
  description = "Region of Amazon Bedrock the proxy signs requests for (AWS_REGION of the proxy container)."
  type        = string
}

variable "workspace_agent_log_group" {
  description = "CloudWatch Logs group of the workspace-agent container."
  type        = string
}

variable "workspace_proxy_log_group" {
  description = "CloudWatch Logs group of the credential-proxy container."
  type        = string
}

variable "workspace_task_cpu" {
  description = "Task-level CPU units of the workspace task (hard limit and reservation on EC2). Null: no task-level limit, containers reserve agent + proxy CPU."
  type        = number
  default     = null

  validation {
    condition     = var.workspace_task_cpu == null || try(var.workspace_task_cpu >= 256 && var.workspace_task_cpu <= 10240, false)
    error_message = "workspace_task_cpu must be null or between 256 and 10240."
  }
}

variable "workspace_agent_cpu" {
  description = "CPU units reserved for the workspace-agent container (docs/design-basis.md §4.2: 200)."
  type        = number
  default     = 200

  validation {
    condition     = var.workspace_agent_cpu >= 128
    error_message = "workspace_agent_cpu must be at least 128."
  }
}

variable "workspace_agent_memory" {
  description = "Hard memory limit (MiB) of the workspace-agent container (docs/contracts.md §6: 2 GiB)."
  type        = number
  default     = 2048

  # The tmpfs mounts of the template (1232 MiB with /dev/shm) count against
  # this limit; 768 MiB stay for processes (docs/decisions.md D30,
  # terraform/templates_test.go checks the sum).
  validation {
    condition     = var.workspace_agent_memory >= 2000
    error_message = "workspace_agent_memory must be at least 2000 MiB: the workspace's tmpfs mounts (1232 MiB) plus 768 MiB for its processes."
  }
}

variable "workspace_agent_memory_reservation" {
  description = "Soft memory reservation (MiB) of the workspace-agent container, used for placement."
  type        = number
  default     = 1024

  validation {
    condition     = var.workspace_agent_memory_reservation >= 128
    error_message = "workspace_agent_memory_reservation must be at least 128 MiB."
  }
}

variable "workspace_agent_nproc_limit" {
  description = "RLIMIT_NPROC of the workspace-agent. ECS has no per-task pids limit; nproc counts every process of uid 1000 on the instance, so this is a per-instance fork-bomb ceiling (256 per workspace x 16), not DESIGN's 256 per workspace."
  type        = number
  default     = 4096

  validation {
    condition     = var.workspace_agent_nproc_limit >= 256
    error_message = "workspace_agent_nproc_limit must be at least 256."
  }
}

variable "credential_proxy_cpu" {
  description = "CPU units reserved for the credential-proxy container (docs/design-basis.md §4.2: 128)."
  type        = number
  default     = 128

  validation {
    condition     = var.credential_proxy_cpu >= 64
    error_message = "credential_proxy_cpu must be at least 64."
  }
}

variable "credential_proxy_memory" {
  description = "Hard memory limit (MiB) of the credential-proxy container (docs/design-basis.md §4.2: 256)."
  type        = number
  default     = 256

  validation {
    condition     = var.credential_proxy_memory >= 64
    error_message = "credential_proxy_memory must be at least 64 MiB."
  }
}

variable "credential_proxy_memory_reservation" {
  description = "Soft memory reservation (MiB) of the credential-proxy container."
  type        = number
  default     = 128

  validation {
    condition     = var.credential_proxy_memory_reservation >= 32
    error_message = "credential_proxy_memory_reservation must be at least 32 MiB."
  }
}

variable "bedrock_access_key_id_parameter_arn" {
  description = "ARN of the SSM SecureString holding the Bedrock access key ID (proxy AWS_ACCESS_KEY_ID)."
  type        = string
}

variable "bedrock_secret_access_key_parameter_arn" {
  description = "ARN of the SSM SecureString holding the Bedrock secret access key (proxy AWS_SECRET_ACCESS_KEY)."
  type        = string
}

variable "proxy_domain_whitelist_parameter_arn" {
  description = "ARN of the SSM String holding the proxy's domain allow-list (PROXY_DOMAIN_WHITELIST)."
  type        = string
}

# --- backend service (docs/design-basis.md §4.1) --------------------------------------------

variable "cluster_name" {
  description = "Name of the ECS cluster (ecs module)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster (ecs module)."
  type        = string
}

variable "capacity_provider_name" {
  description = "EC2 capacity provider the backend service and the workspace tasks are placed with (ecs module)."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC (vpc module)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the ALB (vpc module)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets of the backend and workspace task ENIs (vpc module)."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the ALB (security module)."
  type        = string
}

variable "backend_security_group_id" {
  description = "Security group of the backend tasks (security module)."
  type        = string
}

variable "workspace_security_group_id" {
  description = "Security group of the workspace tasks (security module), passed to the backend for RunTask."
  type        = string
}

variable "backend_task_role_arn" {
  description = "Task role of the backend (security module)."
  type        = string
}

variable "backend_image" {
  description = "Image of the backend (ECR URI with an immutable tag or digest)."
  type        = string
}

variable "backend_log_group" {
  description = "CloudWatch Logs group of the backend (monitoring module)."
  type        = string
}

variable "backend_cpu" {
  description = "Task CPU units of a backend task (docs/design-basis.md §4.1: 2048)."
  type        = number
  default     = 2048

  validation {
    condition     = var.backend_cpu >= 256
    error_message = "backend_cpu must be at least 256."
  }
}

variable "backend_memory" {
  description = "Task memory (MiB) of a backend task (docs/design-basis.md §4.1: 4096)."
  type        = number
  default     = 4096

  validation {
    condition     = var.backend_memory >= 512
    error_message = "backend_memory must be at least 512 MiB."
  }
}

variable "backend_min_count" {
  description = "Minimum number of backend tasks (docs/design-basis.md §6.1: 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.backend_min_count >= 1
    error_message = "backend_min_count must be at least 1."
  }
}

variable "backend_max_count" {
  description = "Maximum number of backend tasks (docs/design-basis.md §6.1: 4)."
  type        = number
  default     = 4

  validation {
    condition     = var.backend_max_count >= 1
    error_message = "backend_max_count must be at least 1."
  }
}

variable "backend_cpu_target_percent" {
  description = "Target average CPU of the backend service's target tracking policy (docs/design-basis.md §3.3 A: 70)."
  type        = number
  default     = 70

  validation {
    condition     = var.backend_cpu_target_percent > 0 && var.backend_cpu_target_percent <= 100
    error_message = "backend_cpu_target_percent must be in (0, 100]."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the ALB's HTTPS listener."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "waf_web_acl_arn" {
  description = "Optional AWS WAF web ACL associated with the ALB (docs/design-basis.md §3.3 C)."
  type        = string
  default     = null
}

variable "alb_deletion_protection" {
  description = "Deletion protection of the ALB (on in production)."
  type        = bool
  default     = true
}

variable "alb_idle_timeout_seconds" {
  description = "ALB idle timeout; SSE heartbeats (sse_heartbeat_interval_seconds) must come at least twice per timeout."
  type        = number
  default     = 120

  validation {
    condition     = var.alb_idle_timeout_seconds >= 30 && var.alb_idle_timeout_seconds <= 4000
    error_message = "alb_idle_timeout_seconds must be between 30 and 4000."
  }
}

variable "sse_heartbeat_interval_seconds" {
  description = "The backend's SSE_HEARTBEAT_INTERVAL: comment heartbeats on open streams keep the ALB's idle timer from closing them."
  type        = number
  default     = 15

  validation {
    condition     = var.sse_heartbeat_interval_seconds >= 1 && var.sse_heartbeat_interval_seconds * 2 <= var.alb_idle_timeout_seconds
    error_message = "sse_heartbeat_interval_seconds must be at least 1 and at most half of alb_idle_timeout_seconds."
  }
}

variable "sqs_queue_prefix" {
  description = "The backend's SQS_QUEUE_PREFIX (same as the messaging module's queue_prefix)."
  type        = string
}

variable "command_visibility_timeout_seconds" {
  description = "The command queues' visibility timeout (messaging module), passed as SQS_VISIBILITY_TIMEOUT."
  type        = number
}

variable "workspace_files_bucket" {
  description = "Name of the workspace-files bucket (messaging module)."
  type        = string
}

variable "redis_url" {
  description = "REDIS_URL of the backend without credentials, e.g. rediss://primary:6379/0 (database module)."
  type        = string
}

variable "redis_password_parameter_arn" {
  description = "ARN of the SSM SecureString holding the Redis AUTH token (REDIS_PASSWORD)."
  type        = string
}

variable "api_keys_secret_arn" {
  description = "ARN of the Secrets Manager secret holding API_KEYS (security module)."
  type        = string
}

variable "proxy_admin_key_secret_arn" {
  description = "ARN of the Secrets Manager secret holding PROXY_ADMIN_KEY (security module)."
  type        = string
}

variable "warm_pool_min_size" {
  description = "WARM_POOL_MIN_SIZE: ready, unclaimed workspace tasks kept started."
  type        = number
  default     = 2

  validation {
    condition     = var.warm_pool_min_size >= 0
    error_message = "warm_pool_min_size must not be negative."
  }
}

variable "warm_pool_max_size" {
  description = "WARM_POOL_MAX_SIZE: upper bound of pooled workspace tasks (0: same as min)."
  type        = number
  default     = 0

  validation {
    condition     = var.warm_pool_max_size >= 0
    error_message = "warm_pool_max_size must not be negative."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the backend."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

# --- metrics: CloudWatch agent sidecar of the backend task (metrics.tf) ------

variable "environment" {
  description = "Environment name: the Environment label (and CloudWatch dimension) of every scraped metric."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the agent publishes the backend's metrics into (the monitoring module alarms on it)."
  type        = string
}

variable "metrics_log_group" {
  description = "Log group the agent writes the metrics to as embedded metric format events (monitoring module)."
  type        = string
}

variable "cloudwatch_agent_image" {
  description = "Image of the CloudWatch agent sidecar (an ECR URI with a pinned version tag; the pull-through cache of public.ecr.aws/cloudwatch-agent/cloudwatch-agent)."
  type        = string

  validation {
    condition     = !endswith(var.cloudwatch_agent_image, ":latest")
    error_message = "cloudwatch_agent_image must pin a version, not latest."
  }
}

variable "cloudwatch_agent_cpu" {
  description = "CPU units reserved for the CloudWatch agent sidecar, out of backend_cpu."
  type        = number
  default     = 64

  validation {
    condition     = var.cloudwatch_agent_cpu >= 32
    error_message = "cloudwatch_agent_cpu must be at least 32."
  }
}

variable "cloudwatch_agent_memory" {
  description = "Hard memory limit (MiB) of the CloudWatch agent sidecar, out of backend_memory."
  type        = number
  default     = 256

  validation {
    condition     = var.cloudwatch_agent_memory >= 128
    error_message = "cloudwatch_agent_memory must be at least 128 MiB."
  }
}

variable "cloudwatch_agent_memory_reservation" {
  description = "Soft memory reservation (MiB) of the CloudWatch agent sidecar."
  type        = number
  default     = 128

  validation {
    condition     = var.cloudwatch_agent_memory_reservation >= 64
    error_message = "cloudwatch_agent_memory_reservation must be at least 64 MiB."
  }
}

# --- egress tier (docs/decisions.md D21) -----------------------------------------

variable "egress_security_group_id" {
  description = "Security group of the egress tier tasks."
  type        = string
}

variable "egress_nlb_security_group_id" {
  description = "Security group of the egress tier's internal NLB."
  type        = string
}

variable "egress_proxy_port" {
  description = "Port of the egress tier (NLB listener and tasks)."
  type        = number
  default     = 3128
}

variable "egress_count" {
  description = "Egress tier tasks (two: one per AZ; every workspace's registry and MCP traffic goes through them)."
  type        = number
  default     = 2

  validation {
    condition     = var.egress_count >= 1
    error_message = "egress_count must be at least 1."
  }
}

variable "egress_cpu" {
  description = "CPU units of the egress tier container."
  type        = number
  default     = 256
}

variable "egress_memory" {
  description = "Hard memory limit (MiB) of the egress tier container."
  type        = number
  default     = 512
}

variable "egress_max_tunnels" {
  description = "PROXY_MAX_TUNNELS of an egress task: all workspaces share it (the tier sees one client, the NLB), so it is sized for the fleet, not for one workspace."
  type        = number
  default     = 4096
}
