# The composition of one environment: every module wired together. Each
# terraform/environments/<name> root calls this module once with its sizes
# (a test checks the environments differ only in those values).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name_prefix  = "workspaced-${var.environment}"
  cluster_name = local.name_prefix
  # Known before the cluster exists, so IAM and the EventBridge rule do not
  # wait for it (and no module cycle arises).
  cluster_arn   = "arn:${data.aws_partition.current.partition}:ecs:${var.aws_region}:${data.aws_caller_identity.current.account_id}:cluster/${local.cluster_name}"
  queue_prefix  = "${var.environment}-"
  ssm_prefix    = "/workspaced/${var.environment}"
  ecr_registry  = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${var.aws_region}.amazonaws.com"
  names         = jsondecode(file("${path.module}/../../deploy/names.json"))
  ecr_repo_arns = { for k, r in var.ecr_repositories : k => "arn:${data.aws_partition.current.partition}:ecr:${var.aws_region}:${data.aws_caller_identity.current.account_id}:repository/${r}" }

  tags = {
    Project     = "workspaced"
    Environment = var.environment
    ManagedBy   = "terraform"
  }
}

module "monitoring" {
  source = "../modules/monitoring"

  name_prefix                    = local.name_prefix
  environment                    = var.environment
  aws_region                     = var.aws_region
  log_retention_days             = var.log_retention_days
  alarm_email                    = var.alarm_email
  cluster_name                   = local.cluster_name
  backend_service_name           = module.services.backend_service_name
  alb_arn_suffix                 = module.services.alb_arn_suffix
  target_group_arn_suffix        = module.services.target_group_arn_suffix
  egress_nlb_arn_suffix          = module.services.egress_nlb_arn_suffix
  egress_target_group_arn_suffix = module.services.egress_target_group_arn_suffix
  command_queue_names            = values(module.messaging.command_queue_names)
  task_events_queue_name         = module.messaging.task_events_queue_name
  dead_letter_queue_names        = module.messaging.dead_letter_queue_names
  task_state_change_rule_name    = module.messaging.task_state_change_rule_name
  warm_pool_alarm_enabled        = var.warm_pool_min_size > 0
  autoscaling_group_name         = module.ecs.autoscaling_group_name
  ec2_warm_pool_alarm_enabled    = var.ec2_warm_pool_min_size > 0

  active_workspaces_alarm_threshold = var.active_workspaces_alarm_threshold
  metrics_namespace                 = var.metrics_namespace
  tags                              = local.tags
}

module "vpc" {
  source = "../modules/vpc"

  name_prefix                        = local.name_prefix
  aws_region                         = var.aws_region
  cidr_block                         = var.vpc_cidr_block
  availability_zones                 = var.availability_zones
  public_subnet_cidrs                = [for i, _ in var.availability_zones : cidrsubnet(var.vpc_cidr_block, 8, i)]
  private_subnet_cidrs               = [for i, _ in var.availability_zones : cidrsubnet(var.vpc_cidr_block, 4, i + 1)]
  single_nat_gateway                 = var.single_nat_gateway
  endpoint_security_group_id         = module.security.endpoints_security_group_id
  bedrock_endpoint_security_group_id = module.security.bedrock_endpoint_security_group_id
  logs_kms_key_arn                   = module.monitoring.logs_kms_key_arn
  tags                               = local.tags
}

module "messaging" {
  source = "../modules/messaging"

  name_prefix                        = local.name_prefix
  queue_prefix                       = local.queue_prefix
  cluster_arn                        = local.cluster_arn
  command_visibility_timeout_seconds = var.command_visibility_timeout_seconds
  force_destroy_bucket               = var.force_destroy_bucket
  tags                               = local.tags
}

module "security" {
  source = "../modules/security"

  name_prefix                  = local.name_prefix
  aws_region                   = var.aws_region
  vpc_id                       = module.vpc.vpc_id
  s3_prefix_list_id            = module.vpc.s3_prefix_list_id
  cluster_arn                  = local.cluster_arn
  workspace_task_family        = "${local.name_prefix}-${local.names.workspace_task.family}"
  agent_port                   = local.names.workspace_task.agent_port
  proxy_admin_port             = local.names.workspace_task.proxy_admin_port
  alb_ingress_cidr_blocks      = var.alb_ingress_cidr_blocks
  workspace_egress_cidr_blocks = var.workspace_egress_cidr_blocks
  enable_rds                   = var.enable_rds
  command_queue_arns           = values(module.messaging.command_queue_arns)
  task_events_queue_arn        = module.messaging.task_events_queue_arn
  dead_letter_queue_arns       = module.messaging.dead_letter_queue_arns
  workspace_files_bucket_arn   = module.messaging.workspace_files_bucket_arn
  workspace_files_kms_key_arn  = module.messaging.workspace_files_kms_key_arn
  log_group_arns               = module.monitoring.log_group_arns
  ecr_repository_arns          = values(local.ecr_repo_arns)
  # The CloudWatch agent comes through the ECR Public pull-through cache.
  ecr_pull_through_repository_arns = [local.ecr_repo_arns.cloudwatch_agent]
  metrics_log_group_arn            = module.monitoring.metrics_log_group_arn
  ssm_parameter_prefix             = local.ssm_prefix
  # Bedrock of another region has no VPC endpoint here: the sidecar reaches
  # it through the egress tier, which must allow its name.
  proxy_domain_whitelist = distinct(concat(var.proxy_domain_whitelist,
  coalesce(var.bedrock_region, var.aws_region) == var.aws_region ? [] : ["bedrock-runtime.${var.bedrock_region}.amazonaws.com"]))
  mcp_domains                      = var.mcp_domains
  dns_firewall_mutation_protection = var.dns_firewall_mutation_protection
  tags                             = local.tags
}

module "ecs" {
  source = "../modules/ecs"

  name_prefix                 = local.name_prefix
  cluster_name                = local.cluster_name
  private_subnet_ids          = module.vpc.private_subnet_ids
  instances_security_group_id = module.security.instances_security_group_id
  instance_profile_arn        = module.security.instance_profile_arn
  ami_id                      = var.ami_id
  instance_type               = var.instance_type
  asg_min_size                = var.asg_min_size
  asg_max_size                = var.asg_max_size
  warm_pool_min_size          = var.ec2_warm_pool_min_size
  capacity_target_percent     = 85

  manage_trunking_account_setting = var.manage_trunking_account_setting
  tags                            = local.tags
}

module "database" {
  source = "../modules/database"

  name_prefix             = local.name_prefix
  private_subnet_ids      = module.vpc.private_subnet_ids
  redis_security_group_id = module.security.redis_security_group_id
  rds_security_group_id   = module.security.rds_security_group_id
  secrets_kms_key_arn     = module.security.secrets_kms_key_arn
  ssm_parameter_prefix    = local.ssm_prefix
  redis_node_type         = var.redis_node_type
  enable_rds              = var.enable_rds
  rds_instance_class      = var.rds_instance_class
  rds_multi_az            = var.rds_multi_az
  deletion_protection     = var.deletion_protection
  tags                    = local.tags
}

module "services" {
  source = "../modules/services"

  name_prefix                             = local.name_prefix
  aws_region                              = var.aws_region
  execution_role_arn                      = module.security.execution_role_arn
  workspace_agent_image                   = "${local.ecr_registry}/${var.ecr_repositories.workspace}:${var.image_tag}"
  credential_proxy_image                  = "${local.ecr_registry}/${var.ecr_repositories.credential_proxy}:${var.image_tag}"
  bedrock_region                          = coalesce(var.bedrock_region, var.aws_region)
  workspace_agent_log_group               = module.monitoring.log_group_names.workspace_agent
  workspace_proxy_log_group               = module.monitoring.log_group_names.workspace_proxy
  bedrock_access_key_id_parameter_arn     = module.security.bedrock_access_key_id_parameter_arn
  bedrock_secret_access_key_parameter_arn = module.security.bedrock_secret_access_key_parameter_arn
  proxy_domain_whitelist_parameter_arn    = module.security.proxy_domain_whitelist_parameter_arn
  cluster_name                            = module.ecs.cluster_name
  cluster_arn                             = module.ecs.cluster_arn
  capacity_provider_name                  = module.ecs.capacity_provider_name
  vpc_id                                  = module.vpc.vpc_id
  public_subnet_ids                       = module.vpc.public_subnet_ids
  private_subnet_ids                      = module.vpc.private_subnet_ids
  alb_security_group_id                   = module.security.alb_security_group_id
  backend_security_group_id               = module.security.backend_security_group_id
  workspace_security_group_id             = module.security.workspace_security_group_id
  egress_security_group_id                = module.security.egress_security_group_id
  egress_nlb_security_group_id            = module.security.egress_nlb_security_group_id
  backend_task_role_arn                   = module.security.backend_task_role_arn
  backend_image                           = "${local.ecr_registry}/${var.ecr_repositories.backend}:${var.image_tag}"
  backend_log_group                       = module.monitoring.log_group_names.backend
  backend_cpu                             = var.backend_cpu
  backend_memory                          = var.backend_memory
  backend_min_count                       = var.backend_min_count
  backend_max_count                       = var.backend_max_count
  backend_cpu_target_percent              = 70
  certificate_arn                         = var.certificate_arn
  waf_web_acl_arn                         = var.waf_web_acl_arn
  alb_deletion_protection                 = var.deletion_protection
  sqs_queue_prefix                        = local.queue_prefix
  command_visibility_timeout_seconds      = var.command_visibility_timeout_seconds
  workspace_files_bucket                  = module.messaging.workspace_files_bucket_name
  redis_url                               = module.database.redis_url
  redis_password_parameter_arn            = module.database.redis_password_parameter_arn
  api_keys_secret_arn                     = module.security.api_keys_secret_arn
  proxy_admin_key_secret_arn              = module.security.proxy_admin_key_secret_arn
  warm_pool_min_size                      = var.warm_pool_min_size
  warm_pool_max_size                      = var.warm_pool_max_size
  environment                             = var.environment
  metrics_namespace                       = var.metrics_namespace
  metrics_log_group                       = module.monitoring.metrics_log_group_name
  cloudwatch_agent_image                  = "${local.ecr_registry}/${var.ecr_repositories.cloudwatch_agent}:${var.cloudwatch_agent_image_tag}"
  tags                                    = local.tags
}
