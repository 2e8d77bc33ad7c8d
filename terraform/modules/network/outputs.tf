output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (load balancer only)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (tasks, Redis, PostgreSQL)."
  value       = aws_subnet.private[*].id
}

output "security_group_ids" {
  description = "Security group ID of each tier: alb, api, airflow, mlflow, redis, postgres, endpoints."
  value       = { for tier, sg in aws_security_group.tier : tier => sg.id }
}

output "s3_endpoint_id" {
  description = "ID of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.id
}
