output "secret_arn" {
  description = "Secrets Manager secret with fernet_key, jwt_secret and admin_password."
  value       = aws_secretsmanager_secret.airflow.arn
}

output "service_names" {
  description = "ECS service of each Airflow component."
  value       = { for k, m in module.component : k => m.service_name }
}

output "init_task_definition" {
  description = "Task definition family of airflow-init, for `aws ecs run-task`."
  value       = module.init.task_definition_family
}

output "apiserver_url" {
  description = "Private URL of the Airflow API server and UI (reach it through ECS Exec port forwarding)."
  value       = "http://airflow-apiserver.${var.internal_domain}:8080"
}
