output "workspace_task_definition_arn" {
  description = "ARN (with revision) of the workspace task definition."
  value       = aws_ecs_task_definition.workspace.arn
}

output "workspace_task_definition_family" {
  description = "Family of the workspace task definition (the backend's WORKSPACE_TASK_DEFINITION)."
  value       = aws_ecs_task_definition.workspace.family
}

output "backend_service_name" {
  description = "Name of the backend ECS service."
  value       = aws_ecs_service.backend.name
}

output "backend_task_definition_arn" {
  description = "ARN (with revision) of the backend task definition."
  value       = aws_ecs_task_definition.backend.arn
}

output "alb_dns_name" {
  description = "DNS name of the ALB (point the API's DNS record here)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the ALB (Route 53 alias records)."
  value       = aws_lb.this.zone_id
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the backend target group (CloudWatch dimension)."
  value       = aws_lb_target_group.backend.arn_suffix
}

output "egress_nlb_arn_suffix" {
  description = "ARN suffix of the egress tier's NLB (CloudWatch dimension)."
  value       = aws_lb.egress.arn_suffix
}

output "egress_target_group_arn_suffix" {
  description = "ARN suffix of the egress tier's target group (CloudWatch dimension)."
  value       = aws_lb_target_group.egress.arn_suffix
}
