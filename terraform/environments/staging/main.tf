# Staging: terraform/stack at staging sizes (docs/design-basis.md §6.3, §14; docs/deploy.md,
# "Capacity"). Environments differ only in the values below (a test checks
# it); what they share is in terraform/stack.

locals {
  environment = "staging"
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
  vpc_cidr_block     = "10.40.0.0/16"
  single_nat_gateway = true # docs/design-basis.md §14 staging: one NAT gateway

  # Container instances: c6i.xlarge (~12 trunked ENIs), 2 to 4.
  instance_type          = "c6i.xlarge"
  asg_min_size           = 2
  asg_max_size           = 4
  ec2_warm_pool_min_size = 1

  # Backend: half of docs/design-basis.md §4.1, so a c6i.xlarge keeps room for workspaces.
  backend_cpu       = 1024
  backend_memory    = 2048
  backend_min_count = 1
  backend_max_count = 2

  warm_pool_min_size = 2
  warm_pool_max_size = 0

  redis_node_type    = "cache.t3.micro"
  rds_instance_class = "db.t3.medium"
  rds_multi_az       = false

  deletion_protection              = false
  dns_firewall_mutation_protection = false
  force_destroy_bucket             = true
  log_retention_days               = 14

  active_workspaces_alarm_threshold = 40 # ~80 % of 4 x c6i.xlarge x ~12 trunked ENIs

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
