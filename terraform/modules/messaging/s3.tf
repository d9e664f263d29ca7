# Workspace files: the tar archive of an idle workspace's /workspace, saved on
# release and restored on the next acquire of the conversation.

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "workspace_files" {
  description             = "${var.name_prefix} workspace files (S3)"
  deletion_window_in_days = 30
  enable_key_rotation     = true
  tags                    = var.tags
}

resource "aws_kms_alias" "workspace_files" {
  name          = "alias/${var.name_prefix}-workspace-files"
  target_key_id = aws_kms_key.workspace_files.key_id
}

#trivy:ignore:AVD-AWS-0089 object access is audited by CloudTrail S3 data events (docs/deploy.md, step 1); a second log bucket would hold the same information.
resource "aws_s3_bucket" "workspace_files" {
  bucket        = "${var.name_prefix}-${data.aws_caller_identity.current.account_id}-${local.names.workspace_files_bucket_suffix}"
  force_destroy = var.force_destroy_bucket
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "workspace_files" {
  bucket = aws_s3_bucket.workspace_files.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "workspace_files" {
  bucket                  = aws_s3_bucket.workspace_files.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "workspace_files" {
  bucket = aws_s3_bucket.workspace_files.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "workspace_files" {
  bucket = aws_s3_bucket.workspace_files.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.workspace_files.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "workspace_files" {
  bucket = aws_s3_bucket.workspace_files.id

  # Versioning must be on before noncurrent-version rules mean anything.
  depends_on = [aws_s3_bucket_versioning.workspace_files]

  rule {
    id     = "expire-workspace-archives"
    status = "Enabled"

    filter {}

    expiration {
      days = var.workspace_files_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "remove-expired-delete-markers"
    status = "Enabled"

    filter {}

    expiration {
      expired_object_delete_marker = true
    }
  }
}

data "aws_iam_policy_document" "workspace_files" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.workspace_files.arn,
      "${aws_s3_bucket.workspace_files.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "workspace_files" {
  bucket = aws_s3_bucket.workspace_files.id
  policy = data.aws_iam_policy_document.workspace_files.json

  depends_on = [aws_s3_bucket_public_access_block.workspace_files]
}
