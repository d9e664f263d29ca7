output "redis_primary_endpoint" {
  description = "Primary endpoint address of the Redis replication group."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "redis_url" {
  description = "REDIS_URL for the backend (TLS, no credentials: the password comes from REDIS_PASSWORD)."
  value       = "rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
}

output "redis_password_parameter_arn" {
  description = "ARN of the SSM SecureString holding the Redis AUTH token."
  value       = aws_ssm_parameter.redis_password.arn
}

output "rds_endpoint" {
  description = "Endpoint of the RDS instance (null unless enable_rds)."
  value       = var.enable_rds ? aws_db_instance.this[0].endpoint : null
}

output "rds_master_secret_arn" {
  description = "Secrets Manager secret of the RDS master user (null unless enable_rds)."
  value       = var.enable_rds ? aws_db_instance.this[0].master_user_secret[0].secret_arn : null
}
