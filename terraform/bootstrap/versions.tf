# One-time, per AWS account: what must exist before an environment's first
# `terraform init` and before CI can push images (docs/deploy.md, step 1).
# Its own state stays local (terraform.tfstate here, not committed; keep a
# copy) or is migrated into the bucket it creates afterwards.
terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project   = "workspaced"
      ManagedBy = "terraform"
    }
  }
}
