output "api_url" {
  description = "Base URL of the API (via the ALB; add a DNS alias matching the certificate)."
  value       = "https://${module.services.alb_dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.services.alb_dns_name
}

output "cluster_name" {
  description = "ECS cluster name (CI: aws ecs update-service / wait services-stable)."
  value       = module.ecs.cluster_name
}

output "backend_service_name" {
  description = "Backend ECS service name."
  value       = module.services.backend_service_name
}

output "workspace_task_definition_family" {
  description = "Family of the workspace task definition."
  value       = module.services.workspace_task_definition_family
}

output "command_queue_urls" {
  description = "Command queue URLs."
  value       = module.messaging.command_queue_urls
}

output "task_events_queue_url" {
  description = "Task-events queue URL."
  value       = module.messaging.task_events_queue_url
}

output "dead_letter_queue_arns" {
  description = "Dead-letter queues (redrive source ARNs)."
  value       = module.messaging.dead_letter_queue_arns
}

output "workspace_files_bucket" {
  description = "Workspace-files bucket."
  value       = module.messaging.workspace_files_bucket_name
}

output "bedrock_proxy_user_name" {
  description = "IAM user whose access key goes into the Bedrock SSM parameters."
  value       = module.security.bedrock_proxy_user_name
}

output "nat_gateway_public_ips" {
  description = "Egress IPs of workspace traffic (for MCP servers' allow-lists)."
  value       = module.vpc.nat_gateway_public_ips
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.monitoring.alarm_topic_arn
}

output "backend_task_definition_arn" {
  description = "Backend task definition this apply deployed (CI checks the service runs it, not a rolled-back one)."
  value       = module.services.backend_task_definition_arn
}

output "alb_zone_id" {
  description = "Hosted zone of the ALB (Route 53 alias record of the API name)."
  value       = module.services.alb_zone_id
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the environment."
  value       = module.monitoring.dashboard_name
}

output "metrics_log_group_name" {
  description = "Log group of the backend's metrics as embedded metric format events (Logs Insights drill-down)."
  value       = module.monitoring.metrics_log_group_name
}
