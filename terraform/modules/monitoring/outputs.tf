output "log_group_names" {
  description = "Log group names keyed backend, workspace_agent, workspace_proxy."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "log_group_arns" {
  description = "Log group ARNs (execution role awslogs permissions)."
  value       = [for g in aws_cloudwatch_log_group.this : g.arn]
}

output "logs_kms_key_arn" {
  description = "KMS key encrypting CloudWatch Logs groups of this environment."
  value       = aws_kms_key.logs.arn
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "metrics_log_group_name" {
  description = "Log group the CloudWatch agent sidecar writes the backend's metrics to (embedded metric format)."
  value       = aws_cloudwatch_log_group.metrics.name
}

output "metrics_log_group_arn" {
  description = "ARN of the metrics log group (the backend task role may write to it, nothing else)."
  value       = aws_cloudwatch_log_group.metrics.arn
}
