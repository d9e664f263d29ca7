# The messaging module under the mocked AWS provider (offline): the rule
# that feeds task events to SQS, the queue policies, the dead-letter
# wiring. Run: terraform test (docs/deploy.md, "Checks").

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:user/test"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:ap-northeast-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = {
      arn = "arn:aws:events:ap-northeast-1:123456789012:rule/workspaced-test-task-state-change"
    }
  }
}

# Distinct ARNs per queue, so a queue wired to the wrong DLQ shows.
override_resource {
  target = aws_sqs_queue.command_dlq["workspace_requested"]
  values = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-requested-dlq", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-workspace-requested-dlq" }
}

override_resource {
  target = aws_sqs_queue.command_dlq["workspace_released"]
  values = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-released-dlq", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-workspace-released-dlq" }
}

override_resource {
  target = aws_sqs_queue.command["workspace_requested"]
  values = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-requested", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-workspace-requested" }
}

override_resource {
  target = aws_sqs_queue.command["workspace_released"]
  values = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-released", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-workspace-released" }
}

override_resource {
  target = aws_sqs_queue.task_events_dlq
  values = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-task-events-dlq", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-workspace-task-events-dlq" }
}

override_resource {
  target = aws_sqs_queue.task_events
  values = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-task-events", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-workspace-task-events" }
}

variables {
  name_prefix  = "workspaced-test"
  queue_prefix = "test-"
  cluster_arn  = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/workspaced-test"
}

run "task_state_change_rule" {
  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.task_state_change.event_pattern) == {
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Task State Change"]
      detail = {
        clusterArn = [var.cluster_arn]
        startedBy  = [{ prefix = "workspaced" }]
      }
    }
    error_message = "The rule must match aws.ecs / ECS Task State Change of this cluster, startedBy our prefix: ${aws_cloudwatch_event_rule.task_state_change.event_pattern}"
  }

  assert {
    condition     = aws_cloudwatch_event_target.task_events_queue.arn == aws_sqs_queue.task_events.arn
    error_message = "The rule must target the task-events queue."
  }

  assert {
    condition     = aws_cloudwatch_event_target.task_events_queue.dead_letter_config[0].arn == aws_sqs_queue.task_events_dlq.arn
    error_message = "Undeliverable task events must go to the task-events DLQ."
  }
}

run "task_events_queue_policy" {
  # The only Allow: sqs:SendMessage from events.amazonaws.com, conditioned
  # on the rule's ARN; everything else is a Deny.
  assert {
    condition = [for s in data.aws_iam_policy_document.task_events_queue.statement : {
      actions    = s.actions
      principals = [for p in s.principals : { type = p.type, identifiers = p.identifiers }]
      conditions = [for c in s.condition : { test = c.test, variable = c.variable, values = c.values }]
      resources  = s.resources
      } if s.effect == "Allow"] == [{
      actions    = toset(["sqs:SendMessage"])
      principals = [{ type = "Service", identifiers = toset(["events.amazonaws.com"]) }]
      conditions = [{ test = "ArnEquals", variable = "aws:SourceArn", values = tolist([aws_cloudwatch_event_rule.task_state_change.arn]) }]
      resources  = toset([aws_sqs_queue.task_events.arn])
    }]
    error_message = "The task-events queue policy must allow only sqs:SendMessage from events.amazonaws.com with aws:SourceArn = the rule."
  }

  assert {
    condition     = aws_sqs_queue_policy.task_events.queue_url == aws_sqs_queue.task_events.id
    error_message = "The policy must be attached to the task-events queue."
  }
}

run "every_queue_has_its_dlq" {
  assert {
    condition = alltrue([for k, q in aws_sqs_queue.command :
    jsondecode(q.redrive_policy).deadLetterTargetArn == aws_sqs_queue.command_dlq[k].arn])
    error_message = "Each command queue must redrive to its own DLQ."
  }

  assert {
    condition     = jsondecode(aws_sqs_queue.task_events.redrive_policy).deadLetterTargetArn == aws_sqs_queue.task_events_dlq.arn
    error_message = "The task-events queue must redrive to its DLQ."
  }

  assert {
    condition = alltrue(concat(
      [for q in aws_sqs_queue.command : jsondecode(q.redrive_policy).maxReceiveCount == 5],
      [jsondecode(aws_sqs_queue.task_events.redrive_policy).maxReceiveCount == 5],
    ))
    error_message = "maxReceiveCount must be the documented 5."
  }

  assert {
    condition = alltrue([for k, p in aws_sqs_queue_redrive_allow_policy.command_dlq :
    jsondecode(p.redrive_allow_policy).sourceQueueArns == [aws_sqs_queue.command[k].arn] && p.queue_url == aws_sqs_queue.command_dlq[k].id])
    error_message = "Each command DLQ must accept redrives only from its queue."
  }

  assert {
    condition     = jsondecode(aws_sqs_queue_redrive_allow_policy.task_events_dlq.redrive_allow_policy).sourceQueueArns == [aws_sqs_queue.task_events.arn]
    error_message = "The task-events DLQ must accept redrives only from the task-events queue."
  }

  assert {
    condition     = length(aws_sqs_queue.command) == 2 && length(aws_sqs_queue.command_dlq) == 2
    error_message = "Two command queues, two command DLQs."
  }
}
