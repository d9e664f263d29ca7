terraform {
  # 1.10: S3 native state locking (use_lockfile), no DynamoDB table needed.
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # Partial configuration: bucket and region come from backend.hcl
  # (terraform init -backend-config=backend.hcl), created by
  # terraform/bootstrap. See docs/deploy.md, step 2.
  backend "s3" {
    key          = "workspaced/staging/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
