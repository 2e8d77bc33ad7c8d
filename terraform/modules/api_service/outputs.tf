output "alb_dns_name" {
  description = "DNS name of the load balancer; point the API's DNS record (alias) at it."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "api_key_secret_arn" {
  description = "Secrets Manager secret holding FRAUD_API_KEY."
  value       = aws_secretsmanager_secret.api_key.arn
}

output "service_name" {
  description = "ECS service of the scoring API."
  value       = module.service.service_name
}
