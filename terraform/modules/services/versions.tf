terraform {
  required_version = ">= 1.9.0" # cross-variable validation

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}
