# Secrets of the tasks (docs/design-basis.md §6.1). Terraform creates the containers and the
# key; secret values never pass through Terraform state: an operator writes
# them once with the AWS CLI (docs/deploy.md, "Secrets"). The placeholder
# values below are replaced then and ignored afterwards.

resource "aws_kms_key" "secrets" {
  description             = "${var.name_prefix} task secrets (SSM SecureString, Secrets Manager)"
  deletion_window_in_days = 30
  enable_key_rotation     = true
  tags                    = var.tags
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.name_prefix}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

resource "aws_ssm_parameter" "bedrock_access_key_id" {
  name        = "${var.ssm_parameter_prefix}/bedrock-access-key-id"
  description = "Access key ID of ${aws_iam_user.bedrock_proxy.name} (credential proxy AWS_ACCESS_KEY_ID)"
  type        = "SecureString"
  key_id      = aws_kms_key.secrets.arn
  value       = "set-by-operator"
  tags        = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "bedrock_secret_access_key" {
  name        = "${var.ssm_parameter_prefix}/bedrock-secret-access-key"
  description = "Secret access key of ${aws_iam_user.bedrock_proxy.name} (credential proxy AWS_SECRET_ACCESS_KEY)"
  type        = "SecureString"
  key_id      = aws_kms_key.secrets.arn
  value       = "set-by-operator"
  tags        = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

# The one egress allowlist: the sidecar of every workspace task and the
# egress tier read this parameter as PROXY_DOMAIN_WHITELIST (a terraform
# test checks both task definitions name it), and DNS Firewall allows the
# same names. MCP servers are on it because the sidecar reaches them
# through the tier.
locals {
  egress_allowlist = distinct(concat(var.proxy_domain_whitelist, [for d in var.mcp_domains : trimsuffix(d, ".")]))
}

resource "aws_ssm_parameter" "proxy_domain_whitelist" {
  name        = "${var.ssm_parameter_prefix}/proxy-domain-whitelist"
  description = "Domains the credential proxy and the egress tier forward to (PROXY_DOMAIN_WHITELIST)"
  type        = "String"
  value       = join(",", local.egress_allowlist)
  tags        = var.tags
}

resource "aws_secretsmanager_secret" "api_keys" {
  name                    = "${var.name_prefix}/api-keys"
  description             = "Backend API keys (API_KEYS)"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret" "proxy_admin_key" {
  name                    = "${var.name_prefix}/proxy-admin-key"
  description             = "Backend PROXY_ADMIN_KEY: per-task credential-proxy admin tokens are derived from it"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}
