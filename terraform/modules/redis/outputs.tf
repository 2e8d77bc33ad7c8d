output "primary_endpoint" {
  description = "Primary endpoint of the replication group (writes)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint" {
  description = "Reader endpoint of the replication group (reads spread over the replicas)."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "connection_secret_arn" {
  description = "Secrets Manager secret with keys auth_token and connection_string (REDIS_CONNECTION_STRING)."
  value       = aws_secretsmanager_secret.connection.arn
}
