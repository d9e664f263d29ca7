# ECR (docs/design-basis.md §6.1): backend, workspace-base, credential-proxy. Tags are
# immutable (CI tags with the commit SHA), images are scanned on push, and
# the lifecycle policy keeps the last ecr_keep_images (docs/design-basis.md §12 Phase 5).

resource "aws_ecr_repository" "this" {
  for_each = toset(var.ecr_repositories)

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.state.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged layers of failed or replaced pushes"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the last ${var.ecr_keep_images} images (rollback window)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

# Third-party images the tasks run (the CloudWatch agent sidecar of the
# backend) come from ECR Public through a pull-through cache: the container
# instances have no route to the internet, only the ECR and S3 endpoints, and
# ECR itself fetches the upstream image on the first pull of a tag. The cache
# repositories are created here, not by that first pull, so they are scanned
# and immutable and the pulling role needs no ecr:CreateRepository. Tags
# are immutable: the tasks pin a version, and a tag re-pushed upstream cannot
# silently change what runs.
resource "aws_ecr_pull_through_cache_rule" "ecr_public" {
  ecr_repository_prefix = "ecr-public"
  upstream_registry_url = "public.ecr.aws"
}

#trivy:ignore:AVD-AWS-0033 public upstream images, encrypted at rest with ECR's AES256; a customer key on a pull-through repository needs a repository creation template and an ECR service role for no confidentiality gain.
resource "aws_ecr_repository" "pull_through" {
  for_each = toset(var.ecr_pull_through_repositories)

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "pull_through" {
  for_each = aws_ecr_repository.pull_through

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the last 5 cached versions (the pinned one and rollbacks)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 5
        }
        action = { type = "expire" }
      },
    ]
  })
}
