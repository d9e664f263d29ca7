output "state_bucket" {
  description = "S3 bucket of the environments' Terraform state (backend.hcl bucket)."
  value       = aws_s3_bucket.state.bucket
}

output "ecr_repository_urls" {
  description = "ECR repository URLs keyed by name."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "ecr_pull_through_repository_urls" {
  description = "Pull-through cache repositories (ECR Public) keyed by name: the environments' ecr_repositories.cloudwatch_agent."
  value       = { for k, r in aws_ecr_repository.pull_through : k => r.repository_url }
}

output "ecr_push_role_arn" {
  description = "Role CI assumes to push images (GitHub variable AWS_ECR_PUSH_ROLE_ARN)."
  value       = aws_iam_role.ecr_push.arn
}

output "plan_role_arn" {
  description = "Role CI assumes for terraform plan (GitHub variable AWS_PLAN_ROLE_ARN)."
  value       = aws_iam_role.plan.arn
}

output "deploy_role_arns" {
  description = "Role per GitHub environment for terraform apply (environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = { for k, r in aws_iam_role.deploy : k => r.arn }
}

output "packer_role_arn" {
  description = "Role the AMI workflow assumes (environment \"ami\" variable AWS_PACKER_ROLE_ARN)."
  value       = aws_iam_role.packer.arn
}

output "packer_instance_profile" {
  description = "Instance profile of the Packer build instance (variable PACKER_INSTANCE_PROFILE)."
  value       = aws_iam_instance_profile.packer_build_instance.name
}
