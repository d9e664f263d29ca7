variable "aws_region" {
  description = "Region of the state bucket and the ECR repositories (the environments' region)."
  type        = string
  default     = "ap-northeast-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name such as ap-northeast-1."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose Actions may assume the CI roles through OIDC."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "environments" {
  description = "GitHub environments (with required reviewers) allowed to apply Terraform; one per Terraform environment."
  type        = list(string)
  default     = ["staging", "production"]

  validation {
    condition     = length(var.environments) > 0
    error_message = "At least one environment is needed."
  }
}

variable "ecr_repositories" {
  description = "ECR repositories of the three images (docs/design-basis.md §6.1)."
  type        = list(string)
  default     = ["workspaced/backend", "workspaced/workspace-base", "workspaced/credential-proxy"]
}

variable "ecr_pull_through_repositories" {
  description = "Repositories of the ECR Public pull-through cache (prefix ecr-public/, then the upstream path) that tasks pull third-party images from."
  type        = list(string)
  default     = ["ecr-public/cloudwatch-agent/cloudwatch-agent"]

  validation {
    condition     = alltrue([for r in var.ecr_pull_through_repositories : startswith(r, "ecr-public/")])
    error_message = "Pull-through cache repositories must start with the rule's prefix, ecr-public/."
  }
}

variable "ecr_keep_images" {
  description = "Tagged images kept per repository by the lifecycle policy (docs/design-basis.md §12 Phase 5); older ones expire."
  type        = number
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 5
    error_message = "Keep at least 5 images, enough to roll back."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when another stack already did)."
  type        = bool
  default     = true
}
