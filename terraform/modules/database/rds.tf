# RDS PostgreSQL of docs/design-basis.md §6.1, off by default: workspaced keeps all state in
# Redis and S3. Kept for deployments that add relational data.

resource "aws_db_subnet_group" "this" {
  count = var.enable_rds ? 1 : 0

  name       = "${var.name_prefix}-rds"
  subnet_ids = var.private_subnet_ids
  tags       = var.tags
}

resource "aws_db_instance" "this" {
  count = var.enable_rds ? 1 : 0

  identifier     = "${var.name_prefix}-postgres"
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.rds_instance_class
  multi_az       = var.rds_multi_az

  allocated_storage = var.rds_allocated_storage_gb
  storage_type      = "gp3"
  storage_encrypted = true
  kms_key_id        = var.secrets_kms_key_arn

  db_name  = "workspaced"
  username = "workspaced"
  # RDS keeps the master password in Secrets Manager; it never enters state.
  manage_master_user_password = true

  db_subnet_group_name                = aws_db_subnet_group.this[0].name
  vpc_security_group_ids              = var.rds_security_group_id == null ? [] : [var.rds_security_group_id]
  publicly_accessible                 = false
  iam_database_authentication_enabled = true

  backup_retention_period               = 7
  deletion_protection                   = var.deletion_protection
  skip_final_snapshot                   = !var.deletion_protection
  final_snapshot_identifier             = "${var.name_prefix}-postgres-final"
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.secrets_kms_key_arn
  auto_minor_version_upgrade            = true
  copy_tags_to_snapshot                 = true
  enabled_cloudwatch_logs_exports       = ["postgresql"]
  performance_insights_retention_period = 7

  tags = var.tags
}
