output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "capacity_provider_name" {
  description = "Name of the EC2 capacity provider (the cluster default strategy), once associated with the cluster."
  # Read from the association, not aws_ecs_capacity_provider: whatever uses
  # it (the backend service, the runtime's RunTask) then waits for the
  # provider to be associated with the cluster.
  value = one(aws_ecs_cluster_capacity_providers.this.capacity_providers)
}

output "autoscaling_group_name" {
  description = "Name of the container instances' Auto Scaling group."
  value       = aws_autoscaling_group.this.name
}

output "ami_id" {
  description = "AMI the container instances run."
  value       = local.ami_id
}
