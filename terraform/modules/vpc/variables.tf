variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "aws_region" {
  description = "Region of the VPC (used in VPC endpoint service names)."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Each workspace task takes one private IP (awsvpc), so keep the private subnets large."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be an IPv4 CIDR."
  }
}

variable "availability_zones" {
  description = "Availability zones, one public and one private subnet each (docs/design-basis.md §6.1: two)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "At least two availability zones are required (Multi-AZ)."
  }
}

variable "public_subnet_cidrs" {
  description = "CIDRs of the public subnets (ALB, NAT gateways), one per availability zone."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.public_subnet_cidrs : can(cidrnetmask(c))])
    error_message = "public_subnet_cidrs must be IPv4 CIDRs."
  }
}

variable "private_subnet_cidrs" {
  description = "CIDRs of the private subnets (container instances, task ENIs, Redis), one per availability zone."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.private_subnet_cidrs : can(cidrnetmask(c))])
    error_message = "private_subnet_cidrs must be IPv4 CIDRs."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, staging) instead of one per AZ (production)."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "Interface VPC endpoints (service name suffixes) reachable from the backend and the container instances (docs/design-basis.md §6.1, plus sqs)."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "ecs", "ecs-agent", "ecs-telemetry", "sqs", "kms"]
}

variable "endpoint_security_group_id" {
  description = "Security group of the interface endpoints above (security module: accepts 443 from the backend and the container instances only)."
  type        = string
}

variable "bedrock_endpoint_security_group_id" {
  description = "Security group of the bedrock-runtime interface endpoint (security module: accepts 443 from workspace tasks and the backend)."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow log group."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting CloudWatch Logs groups (monitoring module)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
