# Production: terraform/stack at production sizes (docs/design-basis.md §6.1, §6.3, §14;
# docs/deploy.md, "Capacity"). Environments differ only in the values below
# (a test checks it); what they share is in terraform/stack.

locals {
  environment = "production"
  aws_region  = "ap-northeast-1"
}

provider "aws" {
  region = local.aws_region

  default_tags {
    tags = {
      Project     = "workspaced"
      Environment = local.environment
      ManagedBy   = "terraform"
    }
  }
}

module "stack" {
  source = "../../stack"

  environment        = local.environment
  aws_region         = local.aws_region
  availability_zones = ["ap-northeast-1a", "ap-northeast-1c"]
  vpc_cidr_block     = "10.50.0.0/16"
  single_nat_gateway = false # one NAT gateway per AZ

  # Container instances: c6i.2xlarge (~22 trunked ENIs), 2 to 10.
  instance_type          = "c6i.2xlarge"
  asg_min_size           = 2
  asg_max_size           = 10
  ec2_warm_pool_min_size = 1

  # Backend: docs/design-basis.md §4.1, 2 to 4 tasks.
  backend_cpu       = 2048
  backend_memory    = 4096
  backend_min_count = 2
  backend_max_count = 4

  warm_pool_min_size = 5
  warm_pool_max_size = 0

  redis_node_type    = "cache.r6g.large"
  rds_instance_class = "db.r6g.large"
  rds_multi_az       = true

  deletion_protection              = true
  dns_firewall_mutation_protection = true
  force_destroy_bucket             = false
  log_retention_days               = 90

  active_workspaces_alarm_threshold = 180 # ~80 % of 10 x c6i.2xlarge x ~22 trunked ENIs

  # Per-deployment inputs (variables.tf).
  image_tag                       = var.image_tag
  certificate_arn                 = var.certificate_arn
  alarm_email                     = var.alarm_email
  ami_id                          = var.ami_id
  waf_web_acl_arn                 = var.waf_web_acl_arn
  alb_ingress_cidr_blocks         = var.alb_ingress_cidr_blocks
  workspace_egress_cidr_blocks    = var.workspace_egress_cidr_blocks
  mcp_domains                     = var.mcp_domains
  manage_trunking_account_setting = var.manage_trunking_account_setting
}
