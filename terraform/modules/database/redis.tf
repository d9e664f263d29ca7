# ElastiCache Redis (seed §6.1): cluster mode disabled, Multi-AZ with
# automatic failover, TLS in transit, AUTH token, encrypted at rest.

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "aws_ssm_parameter" "redis_password" {
  name        = "${var.ssm_parameter_prefix}/redis-password"
  description = "ElastiCache AUTH token (backend REDIS_PASSWORD)"
  type        = "SecureString"
  key_id      = var.secrets_kms_key_arn
  value       = random_password.redis_auth.result
  tags        = var.tags
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${var.name_prefix}-redis"
  subnet_ids = var.private_subnet_ids
  tags       = var.tags
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = "${var.name_prefix}-redis"
  description          = "${var.name_prefix} workspace state"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  num_cache_clusters   = var.redis_replicas

  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.redis.name
  security_group_ids = [var.redis_security_group_id]

  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  kms_key_id                 = var.secrets_kms_key_arn
  auth_token                 = random_password.redis_auth.result

  snapshot_retention_limit = var.redis_snapshot_retention_days
  snapshot_window          = "03:00-04:00"
  maintenance_window       = "sun:04:30-sun:05:30"
  apply_immediately        = false

  tags = var.tags
}
