output "command_queue_arns" {
  description = "ARNs of the command queues, keyed by deploy/names.json queue key (workspace_requested, workspace_released)."
  value       = { for k, q in aws_sqs_queue.command : k => q.arn }
}

output "command_queue_urls" {
  description = "URLs of the command queues, keyed like command_queue_arns."
  value       = { for k, q in aws_sqs_queue.command : k => q.id }
}

output "command_queue_names" {
  description = "Names of the command queues, keyed like command_queue_arns."
  value       = { for k, q in aws_sqs_queue.command : k => q.name }
}

output "task_events_queue_arn" {
  description = "ARN of the task-events queue (EventBridge target)."
  value       = aws_sqs_queue.task_events.arn
}

output "task_events_queue_url" {
  description = "URL of the task-events queue."
  value       = aws_sqs_queue.task_events.id
}

output "task_events_queue_name" {
  description = "Name of the task-events queue."
  value       = aws_sqs_queue.task_events.name
}

output "dead_letter_queue_names" {
  description = "Names of every dead-letter queue (for the DLQ depth alarms)."
  value = concat(
    [for q in aws_sqs_queue.command_dlq : q.name],
    [aws_sqs_queue.task_events_dlq.name],
  )
}

output "dead_letter_queue_arns" {
  description = "ARNs of every dead-letter queue (operators redrive from them)."
  value = concat(
    [for q in aws_sqs_queue.command_dlq : q.arn],
    [aws_sqs_queue.task_events_dlq.arn],
  )
}

output "task_state_change_rule_arn" {
  description = "ARN of the EventBridge rule forwarding ECS Task State Change events."
  value       = aws_cloudwatch_event_rule.task_state_change.arn
}

output "task_state_change_rule_name" {
  description = "Name of the EventBridge rule (for its FailedInvocations alarm)."
  value       = aws_cloudwatch_event_rule.task_state_change.name
}

output "workspace_files_bucket_name" {
  description = "Name of the workspace-files bucket."
  value       = aws_s3_bucket.workspace_files.bucket
}

output "workspace_files_bucket_arn" {
  description = "ARN of the workspace-files bucket."
  value       = aws_s3_bucket.workspace_files.arn
}

output "workspace_files_kms_key_arn" {
  description = "ARN of the KMS key encrypting the workspace-files bucket."
  value       = aws_kms_key.workspace_files.arn
}
