# Inputs of one environment. The sizes have no default on purpose: each
# environment (terraform/environments/<name>/main.tf) states them, so none
# inherits another's by accident. Optional inputs are nullable = false where
# a default applies: an environment passing null (its own variable unset)
# gets the default below.

# --- identity and network ---------------------------------------------------

variable "environment" {
  description = "Environment name: resource name prefix, queue prefix, SSM path, the Environment dimension of the custom metrics."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lowercase letters/digits, starting with a letter."
  }
}

variable "aws_region" {
  description = "Region of the deployment (the provider's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name such as ap-northeast-1."
  }
}

variable "availability_zones" {
  description = "Two availability zones of aws_region (docs/design-basis.md §6.1: AZ-a and AZ-c)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 2 && length(distinct(var.availability_zones)) == 2
    error_message = "availability_zones must be two distinct zones."
  }

  validation {
    condition     = alltrue([for z in var.availability_zones : startswith(z, var.aws_region)])
    error_message = "availability_zones must be zones of aws_region."
  }
}

variable "vpc_cidr_block" {
  description = "VPC CIDR (/16: two /24 public and two /20 private subnets are carved from it). Distinct per environment."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr_block)) && endswith(var.vpc_cidr_block, "/16")
    error_message = "vpc_cidr_block must be an IPv4 /16."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ (docs/design-basis.md §14: one in staging, ~$45/month; one per AZ in production, ~$90/month)."
  type        = bool
}

# --- release -----------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the three images in ECR (the git commit SHA CI pushed). Never \"latest\": tags are immutable."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{6,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be an immutable tag such as a commit SHA (7-128 characters), not \"latest\"."
  }
}

variable "ecr_repositories" {
  description = "ECR repository names (terraform/bootstrap creates them). cloudwatch_agent is the pull-through cache of ECR Public's cloudwatch-agent image."
  type = object({
    backend          = string
    workspace        = string
    credential_proxy = string
    cloudwatch_agent = string
  })
  nullable = false
  default = {
    backend          = "workspaced/backend"
    workspace        = "workspaced/workspace-base"
    credential_proxy = "workspaced/credential-proxy"
    cloudwatch_agent = "ecr-public/cloudwatch-agent/cloudwatch-agent"
  }
}

variable "cloudwatch_agent_image_tag" {
  description = "Version of the CloudWatch agent sidecar (public.ecr.aws/cloudwatch-agent/cloudwatch-agent, pulled through the ECR cache). Pin a version; bump it deliberately."
  type        = string
  nullable    = false
  default     = "1.300059.0b1207"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9a-z]+$", var.cloudwatch_agent_image_tag))
    error_message = "cloudwatch_agent_image_tag must be an agent version such as 1.300059.0b1207, not latest."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the API's HTTPS listener (request it before the first apply, docs/deploy.md)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

# --- edge and egress ---------------------------------------------------------

variable "waf_web_acl_arn" {
  description = "Optional WAF web ACL for the ALB."
  type        = string
  default     = null
}

variable "alb_ingress_cidr_blocks" {
  description = "Client CIDRs allowed to the API (staging: narrow to the office/VPN)."
  type        = list(string)
  nullable    = false
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.alb_ingress_cidr_blocks) > 0 && alltrue([for c in var.alb_ingress_cidr_blocks : can(cidrnetmask(c))])
    error_message = "alb_ingress_cidr_blocks must be a non-empty list of IPv4 CIDRs."
  }
}

variable "workspace_egress_cidr_blocks" {
  description = "Extra HTTPS destinations workspace tasks reach DIRECTLY via NAT, around the credential proxy (the agent shares the task ENI). Empty by default: registries and MCP servers go through the egress tier (docs/decisions.md D21)."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for c in var.workspace_egress_cidr_blocks : can(cidrnetmask(c))])
    error_message = "workspace_egress_cidr_blocks must be IPv4 CIDRs."
  }
}

variable "proxy_domain_whitelist" {
  description = "Domains workspaces may reach (PROXY_DOMAIN_WHITELIST): one allowlist for the sidecar, the egress tier and DNS Firewall (with mcp_domains)."
  type        = list(string)
  nullable    = false
  default     = ["pypi.org", "files.pythonhosted.org", "registry.npmjs.org"]
}

variable "mcp_domains" {
  description = "MCP server domains (DNS Firewall allow-list; FQDNs ending in a dot)."
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for d in var.mcp_domains : endswith(d, ".")])
    error_message = "mcp_domains entries must be fully qualified (end with a dot)."
  }
}

variable "bedrock_region" {
  description = "Region of Amazon Bedrock the proxy calls. Null: aws_region."
  type        = string
  default     = null

  validation {
    condition     = var.bedrock_region == null || can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.bedrock_region))
    error_message = "bedrock_region must be a region name such as ap-northeast-1."
  }
}

# --- container instances -----------------------------------------------------

variable "ami_id" {
  description = "Custom AMI (terraform/packer). Null: the newest workspaced-ecs-al2023-* AMI of this account."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "Container instance type (docs/design-basis.md §6.3: c6i.xlarge staging, ~12 trunked ENIs; c6i.2xlarge production, ~22; c6i.4xlarge for large scale)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[0-9]*x?large$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as c6i.xlarge."
  }
}

variable "asg_min_size" {
  description = "Minimum container instances (docs/design-basis.md §6.1, §14: 2)."
  type        = number

  validation {
    condition     = var.asg_min_size >= 1
    error_message = "asg_min_size must be at least 1."
  }
}

variable "asg_max_size" {
  description = "Maximum container instances (docs/design-basis.md §6.1: 10 in production)."
  type        = number

  validation {
    condition     = var.asg_max_size >= 2 && var.asg_max_size <= 50
    error_message = "asg_max_size must be between 2 and 50."
  }

  validation {
    condition     = var.asg_max_size >= var.asg_min_size
    error_message = "asg_max_size must not be below asg_min_size."
  }
}

variable "ec2_warm_pool_min_size" {
  description = "Stopped EC2 instances in the Auto Scaling warm pool (docs/design-basis.md §8.1: 1)."
  type        = number
  nullable    = false
  default     = 1

  validation {
    condition     = var.ec2_warm_pool_min_size >= 0 && var.ec2_warm_pool_min_size <= 10
    error_message = "ec2_warm_pool_min_size must be between 0 and 10."
  }
}

variable "manage_trunking_account_setting" {
  description = "This environment manages the account's awsvpcTrunking default (false when another environment in the same account does)."
  type        = bool
  nullable    = false
  default     = true
}

# --- backend service -----------------------------------------------------------

variable "backend_cpu" {
  description = "Backend task CPU units (docs/design-basis.md §4.1: 2048; staging 1024 so a c6i.xlarge keeps room for workspaces). The CloudWatch agent sidecar shares them."
  type        = number

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.backend_cpu)
    error_message = "backend_cpu must be 256, 512, 1024, 2048 or 4096."
  }
}

variable "backend_memory" {
  description = "Backend task memory (MiB, docs/design-basis.md §4.1: 4096). The CloudWatch agent sidecar's 256 MiB hard limit comes out of it."
  type        = number

  validation {
    condition     = var.backend_memory >= 1024 && var.backend_memory <= 16384
    error_message = "backend_memory must be between 1024 and 16384 MiB."
  }
}

variable "backend_min_count" {
  description = "Minimum backend tasks (docs/design-basis.md §6.1: 2)."
  type        = number

  validation {
    condition     = var.backend_min_count >= 1
    error_message = "backend_min_count must be at least 1."
  }
}

variable "backend_max_count" {
  description = "Maximum backend tasks (docs/design-basis.md §6.1: 4)."
  type        = number

  validation {
    condition     = var.backend_max_count >= 1 && var.backend_max_count <= 20
    error_message = "backend_max_count must be between 1 and 20."
  }

  validation {
    condition     = var.backend_max_count >= var.backend_min_count
    error_message = "backend_max_count must not be below backend_min_count."
  }
}

variable "warm_pool_min_size" {
  description = "WARM_POOL_MIN_SIZE: pre-started workspace tasks. Above 0 also arms the warm-pool-empty alarm."
  type        = number

  validation {
    condition     = var.warm_pool_min_size >= 0 && var.warm_pool_min_size <= 100
    error_message = "warm_pool_min_size must be between 0 and 100."
  }
}

variable "warm_pool_max_size" {
  description = "WARM_POOL_MAX_SIZE (0: same as min)."
  type        = number
  nullable    = false
  default     = 0

  validation {
    condition     = var.warm_pool_max_size >= 0 && var.warm_pool_max_size <= 200
    error_message = "warm_pool_max_size must be between 0 and 200."
  }

  validation {
    condition     = var.warm_pool_max_size == 0 || var.warm_pool_max_size >= var.warm_pool_min_size
    error_message = "warm_pool_max_size must be 0 or at least warm_pool_min_size."
  }
}

variable "command_visibility_timeout_seconds" {
  description = "Visibility timeout of the command queues: 120 s covers the worker's longest handler (RunTask + retries, SQS_VISIBILITY_TIMEOUT)."
  type        = number
  nullable    = false
  default     = 120

  validation {
    condition     = var.command_visibility_timeout_seconds >= 60 && var.command_visibility_timeout_seconds <= 900
    error_message = "command_visibility_timeout_seconds must be between 60 and 900."
  }
}

# --- data stores -----------------------------------------------------------------

variable "redis_node_type" {
  description = "ElastiCache node type (docs/design-basis.md §14: cache.t3.micro staging, cache.r6g.large production). Always Multi-AZ, two nodes."
  type        = string

  validation {
    condition     = startswith(var.redis_node_type, "cache.")
    error_message = "redis_node_type must start with cache."
  }
}

variable "enable_rds" {
  description = "Create RDS PostgreSQL (off: workspaced does not use it)."
  type        = bool
  nullable    = false
  default     = false
}

variable "rds_instance_class" {
  description = "RDS instance class when enable_rds (docs/design-basis.md §14: db.t3.medium staging, db.r6g.large production)."
  type        = string

  validation {
    condition     = startswith(var.rds_instance_class, "db.")
    error_message = "rds_instance_class must start with db."
  }
}

variable "rds_multi_az" {
  description = "Multi-AZ RDS when enable_rds (docs/design-basis.md §14: production)."
  type        = bool
}

variable "deletion_protection" {
  description = "Deletion protection of the ALB and data stores (final snapshots too)."
  type        = bool
}

variable "dns_firewall_mutation_protection" {
  description = "Mutation protection of the DNS Firewall association: on in production; off where terraform destroy must work (staging)."
  type        = bool
}

variable "force_destroy_bucket" {
  description = "Let terraform destroy empty and delete the workspace-files bucket."
  type        = bool
}

# --- observability -----------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of the ECS log groups."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 180, 365], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 180, 365."
  }
}

variable "alarm_email" {
  description = "Optional e-mail for alarm notifications."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address."
  }
}

variable "active_workspaces_alarm_threshold" {
  description = "Running workspace tasks at which the workspaces-active alarm fires: about 80 % of asg_max_size times the awsvpc tasks one instance_type holds (trunked ENIs)."
  type        = number

  validation {
    condition     = var.active_workspaces_alarm_threshold >= 1
    error_message = "active_workspaces_alarm_threshold must be at least 1."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the CloudWatch agent sidecar publishes the backend's Prometheus metrics into (docs/deploy.md, \"Metrics\")."
  type        = string
  nullable    = false
  default     = "Workspaced"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be a custom CloudWatch namespace (not AWS/...)."
  }
}
