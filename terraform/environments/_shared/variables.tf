# Per-deployment inputs: CI sets image_tag and certificate_arn (TF_VAR_*);
# the rest are account-specific and optional (terraform.tfvars, not
# committed). Unset (null) means the stack's default. Sizes are not inputs:
# they are this environment's code, in main.tf. This file is the same in
# every environment (a test checks it).

variable "image_tag" {
  description = "Tag of the images to deploy (the commit SHA CI pushed)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the API's HTTPS listener."
  type        = string
}

variable "alarm_email" {
  description = "Optional e-mail subscribed to the alarm topic."
  type        = string
  default     = null
}

variable "ami_id" {
  description = "Container instance AMI. Null: the newest workspaced-ecs-al2023-* AMI of this account."
  type        = string
  default     = null
}

variable "waf_web_acl_arn" {
  description = "Optional WAF web ACL for the ALB."
  type        = string
  default     = null
}

variable "alb_ingress_cidr_blocks" {
  description = "Client CIDRs allowed to the API. Null: anywhere."
  type        = list(string)
  default     = null
}

variable "workspace_egress_cidr_blocks" {
  description = "Extra HTTPS destinations workspace tasks reach directly, around the proxy. Null: none (the stack's default)."
  type        = list(string)
  default     = null
}

variable "mcp_domains" {
  description = "MCP server domains workspaces may resolve (FQDNs ending in a dot). Null: none."
  type        = list(string)
  default     = null
}

variable "manage_trunking_account_setting" {
  description = "Manage the account's awsvpcTrunking default; false in the second environment of a shared account. Null: true."
  type        = bool
  default     = null
}
