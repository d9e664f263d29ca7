output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "capacity_provider_name" {
  description = "Name of the EC2 capacity provider (the cluster default strategy)."
  value       = aws_ecs_capacity_provider.this.name
}

output "autoscaling_group_name" {
  description = "Name of the container instances' Auto Scaling group."
  value       = aws_autoscaling_group.this.name
}

output "ami_id" {
  description = "AMI the container instances run."
  value       = local.ami_id
}
