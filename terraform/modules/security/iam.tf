# IAM roles of docs/design-basis.md §6.1, least privilege:
#   execution role  – image pulls (and pull-through imports), awslogs, the tasks' secrets (SSM, Secrets Manager)
#   backend role    – RunTask/StopTask/... on this cluster, PassRole of the execution role only, its queues, its bucket,
#                     the metrics log group (the CloudWatch agent sidecar)
#   instance role   – the ECS agent on the container instances
# Workspace tasks get no task role at all.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  names      = jsondecode(file("${path.module}/../../../deploy/names.json"))
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  workspace_task_definition_arn = "arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:task-definition/${var.workspace_task_family}:*"
  cluster_name                  = element(split("/", var.cluster_arn), 1)
  cluster_task_arns             = "arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:task/${local.cluster_name}/*"
  # The tasks' SSM parameters, exactly: the proxy's three here, and the Redis
  # AUTH token the database module writes under the same prefix.
  task_ssm_parameter_arns = [
    aws_ssm_parameter.bedrock_access_key_id.arn,
    aws_ssm_parameter.bedrock_secret_access_key.arn,
    aws_ssm_parameter.proxy_domain_whitelist.arn,
    "arn:${local.partition}:ssm:${var.aws_region}:${local.account_id}:parameter${var.ssm_parameter_prefix}/redis-password",
  ]
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- execution role ---------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrAuth"
    # GetAuthorizationToken has no resource-level permissions.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = var.ecr_repository_arns
  }

  statement {
    sid     = "Logs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # Stream names are chosen by ECS at task start; the groups are exact.
    resources = [for arn in var.log_group_arns : "${arn}:log-stream:*"]
  }

  # First pull of a tag from a pull-through cache repository (the CloudWatch
  # agent from ECR Public): ECR imports it on behalf of the puller.
  dynamic "statement" {
    for_each = length(var.ecr_pull_through_repository_arns) > 0 ? [var.ecr_pull_through_repository_arns] : []

    content {
      sid       = "EcrPullThroughImport"
      actions   = ["ecr:BatchImportUpstreamImage"]
      resources = statement.value
    }
  }

  statement {
    sid       = "TaskSecretsSsm"
    actions   = ["ssm:GetParameters"]
    resources = local.task_ssm_parameter_arns
  }

  statement {
    sid       = "TaskSecretsSecretsManager"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.api_keys.arn, aws_secretsmanager_secret.proxy_admin_key.arn]
  }

  statement {
    sid       = "DecryptTaskSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.secrets.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- backend task role --------------------------------------------------------

resource "aws_iam_role" "backend" {
  name               = "${var.name_prefix}-backend-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "backend" {
  statement {
    sid     = "RunWorkspaceTasks"
    actions = ["ecs:RunTask"]
    # Any revision of the one workspace family; the backend runs the latest ACTIVE one, and ecs:cluster pins the cluster.
    resources = [local.workspace_task_definition_arn]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid     = "ManageClusterTasks"
    actions = ["ecs:StopTask", "ecs:DescribeTasks"]
    # Task IDs are unknown until RunTask; only tasks of this cluster, and ecs:cluster pins it.
    resources = [local.cluster_task_arns]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid     = "ListClusterTasks"
    actions = ["ecs:ListTasks"]
    # ListTasks is authorised on container instances, not tasks; the ecs:cluster condition pins the cluster.
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid     = "TagTasksAtLaunch"
    actions = ["ecs:TagResource"]
    # Task IDs are unknown until RunTask; allowed only as part of RunTask (ecs:CreateAction).
    resources = [local.cluster_task_arns]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  # RecordClaim (runtime/ecs/claim.go) tags a warm-pool task with its claim
  # when it is handed to a conversation, long after RunTask: a separate
  # TagResource call, which the statement above does not cover. Only this
  # cluster's tasks, only the claim tag keys (deploy/names.json
  # claim_tag_keys; a Go test keeps them equal to the runtime's).
  statement {
    sid       = "TagClaimedTasks"
    actions   = ["ecs:TagResource"]
    resources = [local.cluster_task_arns]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = local.names.claim_tag_keys
    }
  }

  statement {
    sid       = "PassExecutionRoleOnly"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid = "Queues"
    actions = [
      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
    ]
    resources = concat(var.command_queue_arns, [var.task_events_queue_arn])
  }

  statement {
    sid = "PoisonToDeadLetterQueues"
    # The bus republishes a message that failed every retry to its queue's
    # DLQ (bus.PoisonTopic), and checks the DLQs exist at start.
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = var.dead_letter_queue_arns
  }

  statement {
    sid       = "WorkspaceFilesList"
    actions   = ["s3:ListBucket"]
    resources = [var.workspace_files_bucket_arn]
  }

  statement {
    sid     = "WorkspaceFilesObjects"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    # Objects are keyed per conversation; access is limited to this one bucket.
    resources = ["${var.workspace_files_bucket_arn}/*"]
  }

  statement {
    sid       = "WorkspaceFilesKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.workspace_files_kms_key_arn]
  }

  # The CloudWatch agent sidecar shares this task role. It publishes the
  # backend's metrics as embedded metric format log events, so it needs to
  # write to its one log group and nothing else: CloudWatch Logs extracts
  # the metrics, no cloudwatch:PutMetricData is involved (and none is
  # granted: the backend itself publishes nothing to CloudWatch).
  statement {
    sid     = "MetricsEmf"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # The agent names its log stream after the scrape job at start; the group is exact.
    resources = ["${var.metrics_log_group_arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "backend" {
  name   = "orchestrate-workspaces"
  role   = aws_iam_role.backend.id
  policy = data.aws_iam_policy_document.backend.json
}

# --- container instance role ---------------------------------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name_prefix}-ecs-instance"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "instance" {
  statement {
    sid       = "RegisterWithCluster"
    actions   = ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange", "ecs:SubmitAttachmentStateChanges", "ecs:UpdateContainerInstancesState"]
    resources = [var.cluster_arn]
  }

  statement {
    sid = "AgentDiscover"
    # DiscoverPollEndpoint has no resource-level permissions.
    actions   = ["ecs:DiscoverPollEndpoint"]
    resources = ["*"]
  }

  statement {
    sid       = "AgentSession"
    actions   = ["ecs:Poll", "ecs:StartTelemetrySession"]
    resources = ["arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:container-instance/${local.cluster_name}/*"]
  }

  statement {
    sid       = "TagContainerInstance"
    actions   = ["ecs:TagResource"]
    resources = ["arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:container-instance/${local.cluster_name}/*"]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterContainerInstance"]
    }
  }

  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = var.ecr_repository_arns
  }
}

resource "aws_iam_role_policy" "instance" {
  name   = "ecs-agent"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_role_policy_attachment" "instance_ssm" {
  count = var.enable_ssm_session_manager ? 1 : 0

  role       = aws_iam_role.instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name_prefix}-ecs-instance"
  role = aws_iam_role.instance.name
  tags = var.tags
}

# --- Bedrock caller used by the credential proxy --------------------------------
# The proxy signs Bedrock requests with an access key of a user in this group.
# Terraform never creates the key (it would land in state): an operator runs
# `aws iam create-access-key` and stores it in the SSM parameters below
# (docs/deploy.md).

#trivy:ignore:AVD-AWS-0123 the group holds only the credential proxy's programmatic user (access key, no console password): MFA cannot apply.
resource "aws_iam_group" "bedrock_invokers" {
  name = "${var.name_prefix}-bedrock-invokers"
}

data "aws_iam_policy_document" "bedrock_invoke" {
  statement {
    sid     = "InvokeModels"
    actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    resources = [
      "arn:${local.partition}:bedrock:*::foundation-model/*",
      "arn:${local.partition}:bedrock:*:${local.account_id}:inference-profile/*",
    ]
  }
}

resource "aws_iam_group_policy" "bedrock_invoke" {
  name   = "invoke-models"
  group  = aws_iam_group.bedrock_invokers.name
  policy = data.aws_iam_policy_document.bedrock_invoke.json
}

resource "aws_iam_user" "bedrock_proxy" {
  name = "${var.name_prefix}-bedrock-proxy"
  tags = var.tags
}

resource "aws_iam_user_group_membership" "bedrock_proxy" {
  user   = aws_iam_user.bedrock_proxy.name
  groups = [aws_iam_group.bedrock_invokers.name]
}
