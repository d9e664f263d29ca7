# Command queues (workspace-requested, workspace-released) and the task-events
# queue, each with a dead-letter queue. Names come from deploy/names.json, the
# file the Go code and the LocalStack init scripts read too.

locals {
  names = jsondecode(file("${path.module}/../../../deploy/names.json"))

  command_queues = {
    workspace_requested = local.names.queues.workspace_requested
    workspace_released  = local.names.queues.workspace_released
  }
  task_events_queue = local.names.queues.task_events
  dlq_suffix        = local.names.dead_letter_suffix

  # 14 days, the SQS maximum: time to inspect and redrive a poisoned message.
  dlq_retention_seconds = 1209600
  # 4 days: a command older than that is stale anyway (the client gave up).
  queue_retention_seconds = 345600
}

# SSE-SQS (AWS-managed keys) encrypts at rest; a CMK would need a key policy for events.amazonaws.com and costs per request without adding a control we use.
resource "aws_sqs_queue" "command_dlq" {
  for_each = local.command_queues

  name                      = "${var.queue_prefix}${each.value}${local.dlq_suffix}"
  message_retention_seconds = local.dlq_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# SSE-SQS encrypts at rest; see command_dlq.
resource "aws_sqs_queue" "command" {
  for_each = local.command_queues

  name                       = "${var.queue_prefix}${each.value}"
  visibility_timeout_seconds = var.command_visibility_timeout_seconds
  message_retention_seconds  = local.queue_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.command_dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "command_dlq" {
  for_each = local.command_queues

  queue_url = aws_sqs_queue.command_dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.command[each.key].arn]
  })
}

# SSE-SQS encrypts at rest; EventBridge can deliver to SSE-SQS queues without a key policy.
resource "aws_sqs_queue" "task_events_dlq" {
  name                      = "${var.queue_prefix}${local.task_events_queue}${local.dlq_suffix}"
  message_retention_seconds = local.dlq_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# SSE-SQS encrypts at rest; EventBridge can deliver to SSE-SQS queues without a key policy.
resource "aws_sqs_queue" "task_events" {
  name                       = "${var.queue_prefix}${local.task_events_queue}"
  visibility_timeout_seconds = var.task_events_visibility_timeout_seconds
  message_retention_seconds  = local.queue_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.task_events_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "task_events_dlq" {
  queue_url = aws_sqs_queue.task_events_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.task_events.arn]
  })
}

# Command queues: refuse anything but TLS. Producers and consumers are granted
# access by their IAM roles (security module), not here.
data "aws_iam_policy_document" "command_queue" {
  for_each = local.command_queues

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.command[each.key].arn]

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

resource "aws_sqs_queue_policy" "command" {
  for_each = local.command_queues

  queue_url = aws_sqs_queue.command[each.key].id
  policy    = data.aws_iam_policy_document.command_queue[each.key].json
}
