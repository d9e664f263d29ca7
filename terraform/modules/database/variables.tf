variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of Redis (and RDS), one per AZ (vpc module)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Multi-AZ needs at least two private subnets."
  }
}

variable "redis_security_group_id" {
  description = "Security group of Redis (security module)."
  type        = string
}

variable "rds_security_group_id" {
  description = "Security group of RDS (security module); required when enable_rds."
  type        = string
  default     = null
}

variable "secrets_kms_key_arn" {
  description = "KMS key for the Redis AUTH token parameter and at-rest encryption (security module)."
  type        = string
}

variable "ssm_parameter_prefix" {
  description = "SSM path of this environment's parameters, e.g. \"/workspaced/staging\"."
  type        = string
}

variable "redis_node_type" {
  description = "ElastiCache node type (docs/design-basis.md §14: cache.t3.micro staging, cache.r6g.large production)."
  type        = string

  validation {
    condition     = can(regex("^cache\\.", var.redis_node_type))
    error_message = "redis_node_type must be an ElastiCache node type (cache.*)."
  }
}

variable "redis_engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "redis_replicas" {
  description = "Nodes of the replication group: a primary plus replicas in other AZs (Multi-AZ needs at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_replicas >= 2 && var.redis_replicas <= 6
    error_message = "redis_replicas must be between 2 and 6 (Multi-AZ with automatic failover)."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Days of automatic Redis snapshots. Redis holds no durable state (the reconciler rebuilds it, docs/contracts.md §4.7.6), but a snapshot shortens recovery."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_snapshot_retention_days >= 1 && var.redis_snapshot_retention_days <= 35
    error_message = "redis_snapshot_retention_days must be between 1 and 35."
  }
}

variable "enable_rds" {
  description = "Create the RDS PostgreSQL instance of docs/design-basis.md §6.1. Off: workspaced keeps no relational data."
  type        = bool
  default     = false
}

variable "rds_instance_class" {
  description = "RDS instance class (docs/design-basis.md §14: db.t3.medium staging, db.r6g.large production)."
  type        = string
  default     = "db.t3.medium"
}

variable "rds_multi_az" {
  description = "Multi-AZ RDS (production)."
  type        = bool
  default     = true
}

variable "rds_allocated_storage_gb" {
  description = "Allocated storage of RDS."
  type        = number
  default     = 50

  validation {
    condition     = var.rds_allocated_storage_gb >= 20
    error_message = "rds_allocated_storage_gb must be at least 20."
  }
}

variable "deletion_protection" {
  description = "Deletion protection and final snapshots for the data stores (production)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
