output "bucket_name" {
  description = "Data bucket: set FRAUD_S3_BUCKET to it."
  value       = module.storage.bucket_name
}

output "access_log_bucket_name" {
  description = "Bucket receiving the data bucket's and the load balancer's access logs."
  value       = module.storage.log_bucket_name
}

output "kms_key_arn" {
  description = "Customer-managed KMS key encrypting the platform's data at rest."
  value       = aws_kms_key.main.arn
}

output "ecr_repository_urls" {
  description = "ECR repositories to push the images to (keys: api, airflow)."
  value       = { for k, repo in aws_ecr_repository.this : k => repo.repository_url }
}

output "ecs_cluster_name" {
  description = "ECS cluster running the scoring API, MLflow and Airflow."
  value       = aws_ecs_cluster.main.name
}

output "api_alb_dns_name" {
  description = "DNS name of the scoring API's load balancer: create a DNS alias matching the certificate."
  value       = module.api_service.alb_dns_name
}

output "api_alb_zone_id" {
  description = "Route 53 zone of the load balancer, for an alias record."
  value       = module.api_service.alb_zone_id
}

output "api_key_secret_arn" {
  description = "Secret holding FRAUD_API_KEY, the key clients send in X-API-Key."
  value       = module.api_service.api_key_secret_arn
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of the Redis online store (TLS, AUTH)."
  value       = module.redis.primary_endpoint
}

output "redis_connection_secret_arn" {
  description = "Secret with REDIS_CONNECTION_STRING (key connection_string) and the AUTH token."
  value       = module.redis.connection_secret_arn
}

output "postgres_address" {
  description = "Host of the PostgreSQL server (Airflow, MLflow, Feast registry)."
  value       = module.database.address
}

output "postgres_master_secret_arn" {
  description = "RDS-managed secret with the master password (for init-databases.sh)."
  value       = module.database.master_user_secret_arn
}

output "postgres_connection_secret_arns" {
  description = "Secret per database (airflow, mlflow, feast) with its credentials and SQLAlchemy URL."
  value       = module.database.connection_secret_arns
}

output "db_init_task_definition" {
  description = "Task definition family of db-init (creates the three databases once)."
  value       = module.db_init.task_definition_family
}

output "airflow_services" {
  description = "ECS services of the Airflow components."
  value       = module.airflow.service_names
}

output "airflow_init_task_definition" {
  description = "Task definition family of airflow-init (run once after each Airflow upgrade)."
  value       = module.airflow.init_task_definition
}

output "airflow_url" {
  description = "Private URL of the Airflow UI (ECS Exec port forwarding; not exposed to the internet)."
  value       = module.airflow.apiserver_url
}

output "mlflow_url" {
  description = "Private URL of the MLflow server (MLFLOW_TRACKING_URI of the tasks)."
  value       = local.mlflow_url
}

output "task_role_arns" {
  description = "Task role per workload (api, pipelines, mlflow), each limited to its bucket prefixes."
  value       = module.iam.task_role_arns
}
