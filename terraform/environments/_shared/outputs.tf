# Everything the stack outputs, passed through (CI reads cluster_name,
# backend_service_name and backend_task_definition_arn after apply).

output "api_url" {
  description = "Base URL of the API (via the ALB; add a DNS alias matching the certificate)."
  value       = module.stack.api_url
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.stack.alb_dns_name
}

output "cluster_name" {
  description = "ECS cluster name (CI: aws ecs update-service / wait services-stable)."
  value       = module.stack.cluster_name
}

output "backend_service_name" {
  description = "Backend ECS service name."
  value       = module.stack.backend_service_name
}

output "workspace_task_definition_family" {
  description = "Family of the workspace task definition."
  value       = module.stack.workspace_task_definition_family
}

output "command_queue_urls" {
  description = "Command queue URLs."
  value       = module.stack.command_queue_urls
}

output "task_events_queue_url" {
  description = "Task-events queue URL."
  value       = module.stack.task_events_queue_url
}

output "dead_letter_queue_arns" {
  description = "Dead-letter queues (redrive source ARNs)."
  value       = module.stack.dead_letter_queue_arns
}

output "workspace_files_bucket" {
  description = "Workspace-files bucket."
  value       = module.stack.workspace_files_bucket
}

output "bedrock_proxy_user_name" {
  description = "IAM user whose access key goes into the Bedrock SSM parameters."
  value       = module.stack.bedrock_proxy_user_name
}

output "nat_gateway_public_ips" {
  description = "Egress IPs of workspace traffic (for MCP servers' allow-lists)."
  value       = module.stack.nat_gateway_public_ips
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.stack.alarm_topic_arn
}

output "backend_task_definition_arn" {
  description = "Backend task definition this apply deployed (CI checks the service runs it, not a rolled-back one)."
  value       = module.stack.backend_task_definition_arn
}

output "alb_zone_id" {
  description = "Hosted zone of the ALB (Route 53 alias record of the API name)."
  value       = module.stack.alb_zone_id
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the environment."
  value       = module.stack.dashboard_name
}

output "metrics_log_group_name" {
  description = "Log group of the backend's metrics as embedded metric format events (Logs Insights drill-down)."
  value       = module.stack.metrics_log_group_name
}
