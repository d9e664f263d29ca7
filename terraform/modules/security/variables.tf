variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "aws_region" {
  description = "Region of the deployment."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC (vpc module)."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (vpc module), for egress to S3 (image layers, workspace files)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster; the backend's ECS permissions are conditioned on it."
  type        = string
}

variable "workspace_task_family" {
  description = "Family of the workspace task definition the backend may RunTask."
  type        = string
}

variable "backend_port" {
  description = "Container port of the backend (ALB target)."
  type        = number
  default     = 8000
}

variable "agent_port" {
  description = "Workspace agent port (deploy/names.json workspace_task.agent_port)."
  type        = number
  default     = 9000
}

variable "proxy_admin_port" {
  description = "Credential-proxy admin port (deploy/names.json workspace_task.proxy_admin_port); the backend sets MCP rules through it."
  type        = number
  default     = 9001
}

variable "alb_ingress_cidr_blocks" {
  description = "Client CIDRs allowed to reach the ALB on 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.alb_ingress_cidr_blocks : can(cidrnetmask(c))])
    error_message = "alb_ingress_cidr_blocks must be IPv4 CIDRs."
  }
}

variable "egress_proxy_port" {
  description = "Port of the egress tier (its NLB listener and tasks), the sidecar's PROXY_EGRESS_PROXY port."
  type        = number
  default     = 3128
}

variable "egress_tier_cidr_blocks" {
  description = "Where the egress tier may connect (443, through NAT). The tier itself admits only allowlisted names resolving to public addresses; narrow this when every allowlisted host has known ranges."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.egress_tier_cidr_blocks) > 0 && alltrue([for c in var.egress_tier_cidr_blocks : can(cidrnetmask(c))])
    error_message = "egress_tier_cidr_blocks must be a non-empty list of IPv4 CIDRs."
  }
}

variable "workspace_egress_cidr_blocks" {
  description = "Extra destinations (443) a workspace task may reach DIRECTLY through the NAT gateways, around the proxy (agent and proxy share the task ENI, so the agent can too). Empty (the default): the Bedrock endpoint and the egress tier only (docs/decisions.md D21)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.workspace_egress_cidr_blocks : can(cidrnetmask(c))])
    error_message = "workspace_egress_cidr_blocks must be IPv4 CIDRs."
  }
}

variable "enable_rds" {
  description = "Whether the RDS security group (PostgreSQL 5432 from the backend) is created."
  type        = bool
  default     = false
}

variable "command_queue_arns" {
  description = "ARNs of the command queues the backend publishes to and consumes."
  type        = list(string)
}

variable "dead_letter_queue_arns" {
  description = "ARNs of the dead-letter queues: the backend's bus sends messages it cannot handle there (its poison queue on SQS)."
  type        = list(string)
}

variable "task_events_queue_arn" {
  description = "ARN of the task-events queue the backend consumes."
  type        = string
}

variable "workspace_files_bucket_arn" {
  description = "ARN of the workspace-files bucket."
  type        = string
}

variable "workspace_files_kms_key_arn" {
  description = "ARN of the KMS key of the workspace-files bucket."
  type        = string
}

variable "log_group_arns" {
  description = "ARNs of the log groups the execution role writes to (awslogs)."
  type        = list(string)
}

variable "ecr_repository_arns" {
  description = "ARNs of the ECR repositories tasks pull from (backend, workspace, credential-proxy)."
  type        = list(string)
}

variable "ssm_parameter_prefix" {
  description = "SSM path holding this environment's parameters, e.g. \"/workspaced/staging\" (no trailing slash)."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+[^/]$", var.ssm_parameter_prefix))
    error_message = "ssm_parameter_prefix must start with / and not end with /."
  }
}

variable "proxy_domain_whitelist" {
  description = "Domains the credential proxy forwards to (PROXY_DOMAIN_WHITELIST, comma-joined into an SSM String). Terraform is authoritative: edit here, apply, then start new workspace tasks."
  type        = list(string)
  default     = ["pypi.org", "files.pythonhosted.org", "registry.npmjs.org"]
}

variable "dns_allowed_domains" {
  description = "Domains the VPC may resolve besides the egress allowlist (proxy_domain_whitelist and mcp_domains, added by the module) (Route 53 DNS Firewall, docs/design-basis.md §4.4); everything else gets NXDOMAIN. The firewall applies to the whole VPC, so AWS APIs and internal names stay allowed."
  type        = list(string)
  default = [
    "amazonaws.com.", "*.amazonaws.com.", "*.api.aws.",
    "*.compute.internal.", "*.ec2.internal.", "*.in-addr.arpa.",
    "cdn.amazonlinux.com.",
  ]
}

variable "dns_firewall_mutation_protection" {
  description = "Mutation protection of the DNS Firewall rule group association: true in production; false where terraform destroy must work (staging)."
  type        = bool
  default     = true
}

variable "mcp_domains" {
  description = "MCP server domains workspaces may resolve (docs/design-basis.md §4.4 priority 5), e.g. [\"mcp.example.com.\"]."
  type        = list(string)
  default     = []
}

variable "enable_ssm_session_manager" {
  description = "Attach AmazonSSMManagedInstanceCore to the container instances (shell access without SSH)."
  type        = bool
  default     = true
}

variable "metrics_log_group_arn" {
  description = "ARN of the log group the CloudWatch agent sidecar of the backend task writes the metrics to (monitoring module)."
  type        = string
}

variable "ecr_pull_through_repository_arns" {
  description = "ECR pull-through cache repositories tasks pull from (also in ecr_repository_arns): the execution role may import upstream images into them."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
