output "workspace_task_definition_arn" {
  description = "ARN (with revision) of the workspace task definition."
  value       = aws_ecs_task_definition.workspace.arn
}

output "workspace_task_definition_family" {
  description = "Family of the workspace task definition (the backend's WORKSPACE_TASK_DEFINITION)."
  value       = aws_ecs_task_definition.workspace.family
}
