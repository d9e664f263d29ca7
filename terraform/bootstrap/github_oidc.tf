# GitHub Actions → AWS without long-lived keys: OIDC federation and three
# roles, each trusting only the jobs that need it.
#   ci-ecr-push  pushes images       main branch
#   ci-plan      terraform plan      main branch and pull requests (read-only)
#   ci-deploy-X  terraform apply     GitHub environment X only, whose required
#                                    reviewers are the manual approval

locals {
  oidc_host    = "token.actions.githubusercontent.com"
  oidc_arn     = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.oidc_host}"
  repo_subject = "repo:${var.github_repository}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate chain itself; the thumbprint is kept
  # for provider versions that still require one.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

data "aws_iam_policy_document" "github_trust" {
  for_each = {
    ecr_push = ["${local.repo_subject}:ref:refs/heads/main"]
    plan     = ["${local.repo_subject}:ref:refs/heads/main", "${local.repo_subject}:pull_request"]
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = each.value
    }
  }
}

data "aws_iam_policy_document" "github_deploy_trust" {
  for_each = toset(var.environments)

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["${local.repo_subject}:environment:${each.value}"]
    }
  }
}

# --- image push ---------------------------------------------------------------

resource "aws_iam_role" "ecr_push" {
  name                 = "workspaced-ci-ecr-push"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["ecr_push"].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ecr_push" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushImages"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
    ]
    resources = [for r in aws_ecr_repository.this : r.arn]
  }

  statement {
    sid       = "EncryptLayers"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.state.arn]
  }
}

resource "aws_iam_role_policy" "ecr_push" {
  name   = "push-images"
  role   = aws_iam_role.ecr_push.id
  policy = data.aws_iam_policy_document.ecr_push.json
}

# --- plan (read-only) ---------------------------------------------------------

resource "aws_iam_role" "plan" {
  name                 = "workspaced-ci-plan"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["plan"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "plan" {
  statement {
    sid = "StateLock"
    # Plans take the S3 lock file and read every environment's state.
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    # State objects and lock files of every environment live under this one bucket.
    resources = ["${aws_s3_bucket.state.arn}/*"]
  }

  statement {
    sid = "DecryptStateAndSecureStrings"
    # Refreshing SSM SecureStrings decrypts them; keys of this project only.
    actions = ["kms:Decrypt", "kms:GenerateDataKey"]
    # The environments create their keys after this role; the Project tag condition limits it to this project's keys.
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = ["workspaced"]
    }
  }
}

resource "aws_iam_role_policy" "plan" {
  name   = "state-and-decrypt"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}

# --- apply (one role per protected GitHub environment) -------------------------

# AdministratorAccess: Terraform creates VPCs, IAM roles, clusters, queues, caches... in this account; the role is assumable only from a protected GitHub environment after manual approval.
resource "aws_iam_role" "deploy" {
  for_each = toset(var.environments)

  name                 = "workspaced-ci-deploy-${each.value}"
  assume_role_policy   = data.aws_iam_policy_document.github_deploy_trust[each.value].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "deploy_admin" {
  for_each = aws_iam_role.deploy

  role       = each.value.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AdministratorAccess"
}

# --- AMI builds (Packer, .github/workflows/ami.yml) -----------------------------

data "aws_iam_policy_document" "github_packer_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["${local.repo_subject}:environment:ami"]
    }
  }
}

resource "aws_iam_role" "packer" {
  name                 = "workspaced-ci-packer"
  assume_role_policy   = data.aws_iam_policy_document.github_packer_trust.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "packer" {
  statement {
    sid = "BuildAmi"
    # Packer's documented minimal set for amazon-ebs; the build instance,
    # volumes, key pair and security group are created and deleted per build.
    actions = [
      "ec2:AttachVolume", "ec2:AuthorizeSecurityGroupIngress", "ec2:CopyImage", "ec2:CreateImage",
      "ec2:CreateKeyPair", "ec2:CreateSecurityGroup", "ec2:CreateSnapshot", "ec2:CreateTags",
      "ec2:CreateVolume", "ec2:DeleteKeyPair", "ec2:DeleteSecurityGroup", "ec2:DeleteSnapshot",
      "ec2:DeleteVolume", "ec2:DeregisterImage", "ec2:DescribeImageAttribute", "ec2:DescribeImages",
      "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeRegions",
      "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots", "ec2:DescribeSubnets", "ec2:DescribeTags",
      "ec2:DescribeVolumes", "ec2:DescribeVpcs", "ec2:DetachVolume", "ec2:ModifyImageAttribute",
      "ec2:ModifyInstanceAttribute", "ec2:ModifySnapshotAttribute", "ec2:RegisterImage",
      "ec2:RunInstances", "ec2:StopInstances", "ec2:TerminateInstances",
    ]
    # The instance, volumes and snapshots of a build get IDs only when Packer creates them.
    resources = ["*"]
  }

  statement {
    sid       = "SourceAmiParameter"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.partition}:ssm:${var.aws_region}::parameter/aws/service/ecs/optimized-ami/amazon-linux-2023/*"]
  }

  statement {
    sid       = "PassBuildInstanceProfile"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.packer_build_instance.arn]
  }
}

resource "aws_iam_role_policy" "packer" {
  name   = "build-ami"
  role   = aws_iam_role.packer.id
  policy = data.aws_iam_policy_document.packer.json
}

# The build instance pulls the images it caches.
data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "packer_build_instance" {
  name               = "workspaced-packer-build-instance"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

data "aws_iam_policy_document" "packer_build_instance" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullCachedImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [for r in aws_ecr_repository.this : r.arn]
  }

  statement {
    sid       = "DecryptLayers"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.state.arn]
  }
}

resource "aws_iam_role_policy" "packer_build_instance" {
  name   = "pull-images"
  role   = aws_iam_role.packer_build_instance.id
  policy = data.aws_iam_policy_document.packer_build_instance.json
}

resource "aws_iam_instance_profile" "packer_build_instance" {
  name = "workspaced-packer-build-instance"
  role = aws_iam_role.packer_build_instance.name
}
