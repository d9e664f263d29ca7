# A module, not a root: the environments configure the backend and the
# provider. 1.10 for cross-variable validation and the environments' S3
# native state locking.
terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}
