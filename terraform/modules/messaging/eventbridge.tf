# "ECS Task State Change" events of this cluster's workspace tasks → SQS.
# The pattern lives in a template so Go tests (and the LocalStack init script)
# use exactly the pattern Terraform deploys.

resource "aws_cloudwatch_event_rule" "task_state_change" {
  name        = "${var.name_prefix}-task-state-change"
  description = "ECS Task State Change of workspace tasks (startedBy ${local.names.started_by}*) in ${var.cluster_arn}."
  event_pattern = templatefile("${path.module}/templates/task-state-change-pattern.json.tftpl", {
    cluster_arn       = var.cluster_arn
    started_by_prefix = local.names.started_by
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "task_events_queue" {
  rule      = aws_cloudwatch_event_rule.task_state_change.name
  target_id = "task-events-queue"
  arn       = aws_sqs_queue.task_events.arn

  # EventBridge retries for up to 24 h, then the event goes to the DLQ instead
  # of being dropped; the reconciler covers anything lost before that.
  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.task_events_dlq.arn
  }
}

data "aws_iam_policy_document" "task_events_queue" {
  statement {
    sid       = "AllowTaskStateChangeRule"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.task_events.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.task_state_change.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.task_events.arn]

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

resource "aws_sqs_queue_policy" "task_events" {
  queue_url = aws_sqs_queue.task_events.id
  policy    = data.aws_iam_policy_document.task_events_queue.json
}

# The target's dead-letter queue receives undeliverable events from the same
# rule, so it needs the same grant.
data "aws_iam_policy_document" "task_events_dlq" {
  statement {
    sid       = "AllowTaskStateChangeRuleDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.task_events_dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.task_state_change.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "task_events_dlq" {
  queue_url = aws_sqs_queue.task_events_dlq.id
  policy    = data.aws_iam_policy_document.task_events_dlq.json
}
