output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (ALB)."
  value       = [for az in var.availability_zones : aws_subnet.public[az].id]
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (container instances, workspace task ENIs, Redis)."
  value       = [for az in var.availability_zones : aws_subnet.private[az].id]
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (security group egress to S3)."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "nat_gateway_public_ips" {
  description = "Public IPs of the NAT gateways (egress addresses of workspace proxies, for MCP servers' allow-lists)."
  value       = aws_eip.nat[*].public_ip
}
