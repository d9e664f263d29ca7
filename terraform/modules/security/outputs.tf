output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "backend_security_group_id" {
  description = "Security group of the backend tasks."
  value       = aws_security_group.backend.id
}

output "workspace_security_group_id" {
  description = "Security group of the workspace tasks (the backend's ECS_WORKSPACE_SECURITY_GROUP)."
  value       = aws_security_group.workspace.id
}

output "egress_security_group_id" {
  description = "Security group of the egress tier tasks."
  value       = aws_security_group.egress.id
}

output "egress_nlb_security_group_id" {
  description = "Security group of the egress tier's internal NLB."
  value       = aws_security_group.egress_nlb.id
}

output "egress_allowlist" {
  description = "The one egress allowlist (PROXY_DOMAIN_WHITELIST of the sidecar and of the egress tier, through the same SSM parameter)."
  value       = local.egress_allowlist
}

output "instances_security_group_id" {
  description = "Security group of the container instances."
  value       = aws_security_group.instances.id
}

output "endpoints_security_group_id" {
  description = "Security group of the interface VPC endpoints."
  value       = aws_security_group.endpoints.id
}

output "bedrock_endpoint_security_group_id" {
  description = "Security group of the bedrock-runtime VPC endpoint."
  value       = aws_security_group.bedrock_endpoint.id
}

output "redis_security_group_id" {
  description = "Security group of ElastiCache Redis."
  value       = aws_security_group.redis.id
}

output "rds_security_group_id" {
  description = "Security group of RDS (null unless enable_rds)."
  value       = var.enable_rds ? aws_security_group.rds[0].id : null
}

output "execution_role_arn" {
  description = "ARN of the ECS task execution role."
  value       = aws_iam_role.execution.arn
}

output "backend_task_role_arn" {
  description = "ARN of the backend task role."
  value       = aws_iam_role.backend.arn
}

output "instance_profile_arn" {
  description = "ARN of the container instances' instance profile."
  value       = aws_iam_instance_profile.instance.arn
}

output "instance_role_name" {
  description = "Name of the container instances' role."
  value       = aws_iam_role.instance.name
}

output "secrets_kms_key_arn" {
  description = "ARN of the KMS key encrypting task secrets."
  value       = aws_kms_key.secrets.arn
}

output "bedrock_access_key_id_parameter_arn" {
  description = "ARN of the SSM parameter holding the Bedrock access key ID."
  value       = aws_ssm_parameter.bedrock_access_key_id.arn
}

output "bedrock_secret_access_key_parameter_arn" {
  description = "ARN of the SSM parameter holding the Bedrock secret access key."
  value       = aws_ssm_parameter.bedrock_secret_access_key.arn
}

output "proxy_domain_whitelist_parameter_arn" {
  description = "ARN of the SSM parameter holding the proxy's domain allow-list."
  value       = aws_ssm_parameter.proxy_domain_whitelist.arn
}

output "api_keys_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the backend's API keys."
  value       = aws_secretsmanager_secret.api_keys.arn
}

output "bedrock_proxy_user_name" {
  description = "IAM user whose access key the credential proxy uses (create the key by hand, docs/deploy.md)."
  value       = aws_iam_user.bedrock_proxy.name
}

output "proxy_admin_key_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the backend's PROXY_ADMIN_KEY."
  value       = aws_secretsmanager_secret.proxy_admin_key.arn
}
