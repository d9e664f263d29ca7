variable "name_prefix" {
  description = "Prefix for every resource name of this environment, e.g. \"workspaced-staging\"."
  type        = string
}

variable "cluster_name" {
  description = "Name of the ECS cluster (environments compute its ARN from it for IAM and the EventBridge rule)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the container instances."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Container instances need at least two private subnets (two AZs)."
  }
}

variable "instances_security_group_id" {
  description = "Security group of the container instances' primary ENI (security module)."
  type        = string
}

variable "instance_profile_arn" {
  description = "Instance profile of the container instances (security module)."
  type        = string
}

variable "ami_id" {
  description = "Custom AMI built by terraform/packer (docs/design-basis.md §6.2). Null: the newest AMI named ami_name_prefix* owned by this account."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be null or an AMI ID (ami-...)."
  }
}

variable "ami_name_prefix" {
  description = "Name prefix of the Packer-built AMIs, used when ami_id is null."
  type        = string
  default     = "workspaced-ecs-al2023-"
}

variable "instance_type" {
  description = "Instance type of the container instances (docs/design-basis.md §6.3: c6i.xlarge staging, c6i.2xlarge production)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[0-9]*x?large$|^[a-z][a-z0-9-]*\\.(medium|large|metal)$", var.instance_type))
    error_message = "instance_type must look like an EC2 instance type, e.g. c6i.2xlarge."
  }
}

variable "asg_min_size" {
  description = "Minimum number of in-service container instances (docs/design-basis.md §6.1: 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.asg_min_size >= 1
    error_message = "asg_min_size must be at least 1."
  }
}

variable "asg_max_size" {
  description = "Maximum number of container instances (docs/design-basis.md §6.1: 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.asg_max_size >= 1 && var.asg_max_size <= 100
    error_message = "asg_max_size must be between 1 and 100."
  }
}

variable "warm_pool_min_size" {
  description = "Stopped, pre-initialised instances kept in the EC2 Auto Scaling warm pool (docs/design-basis.md §8.1: 1). 0 disables the warm pool."
  type        = number
  default     = 1

  validation {
    condition     = var.warm_pool_min_size >= 0
    error_message = "warm_pool_min_size must not be negative."
  }
}

variable "capacity_target_percent" {
  description = "Managed scaling target capacity of the capacity provider (docs/design-basis.md §3.3 D: 85)."
  type        = number
  default     = 85

  validation {
    condition     = var.capacity_target_percent >= 1 && var.capacity_target_percent <= 100
    error_message = "capacity_target_percent must be between 1 and 100."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the container instances' root volume (images are cached there: prefer-cached)."
  type        = number
  default     = 60

  validation {
    condition     = var.root_volume_size_gb >= 30
    error_message = "root_volume_size_gb must be at least 30 (the ECS-optimized AL2023 AMI needs 30)."
  }
}

variable "enable_container_insights" {
  description = "CloudWatch Container Insights on the cluster (CPU/memory per task and service)."
  type        = bool
  default     = true
}

variable "manage_trunking_account_setting" {
  description = "Manage the account-wide awsvpcTrunking default here. Only one stack per account may (destroying it resets the setting): false for the second environment sharing an account."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
