output "address" {
  description = "Host name of the PostgreSQL server."
  value       = aws_db_instance.this.address
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) with the master user's password."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "connection_secret_arns" {
  description = "Secret per database (airflow, mlflow, feast) with keys username, password, host, port, dbname and url."
  value       = { for db, secret in aws_secretsmanager_secret.app : db => secret.arn }
}
