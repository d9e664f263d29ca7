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

# --- workspace task (seed §4.2) -------------------------------------------

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
  description = "CPU units reserved for the workspace-agent container (seed §4.2: 200)."
  type        = number
  default     = 200

  validation {
    condition     = var.workspace_agent_cpu >= 128
    error_message = "workspace_agent_cpu must be at least 128."
  }
}

variable "workspace_agent_memory" {
  description = "Hard memory limit (MiB) of the workspace-agent container (DESIGN §6: 2 GiB)."
  type        = number
  default     = 2048

  validation {
    condition     = var.workspace_agent_memory >= 512
    error_message = "workspace_agent_memory must be at least 512 MiB."
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
  description = "CPU units reserved for the credential-proxy container (seed §4.2: 128)."
  type        = number
  default     = 128

  validation {
    condition     = var.credential_proxy_cpu >= 64
    error_message = "credential_proxy_cpu must be at least 64."
  }
}

variable "credential_proxy_memory" {
  description = "Hard memory limit (MiB) of the credential-proxy container (seed §4.2: 256)."
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
