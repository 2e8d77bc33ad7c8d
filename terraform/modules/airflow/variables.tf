variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "image" {
  description = "Airflow image (docker/airflow.Dockerfile) with an immutable tag or digest."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the Airflow tier."
  type        = string
}

variable "namespace_id" {
  description = "Cloud Map namespace the api-server registers in."
  type        = string
}

variable "internal_domain" {
  description = "Domain of the Cloud Map namespace."
  type        = string
}

variable "execution_role_arn" {
  description = "ECS task execution role."
  type        = string
}

variable "task_role_arn" {
  description = "Task role of the pipelines (Airflow runs their tasks)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for logs and the Airflow secret."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the container logs, in days."
  type        = number
}

variable "metadata_db_secret" {
  description = "Secret (key url) with the SQLAlchemy URL of Airflow's metadata database."
  type        = string
}

variable "scheduler_cpu" {
  description = "CPU units of the scheduler (runs the tasks and Spark local mode)."
  type        = number
}

variable "scheduler_memory" {
  description = "Memory of the scheduler, in MiB."
  type        = number
}

variable "spark_driver_memory" {
  description = "SPARK_DRIVER_MEMORY of the pipelines."
  type        = string
}

variable "admin_username" {
  description = "Airflow UI admin created by the airflow-init task."
  type        = string
  default     = "admin"
}

variable "environment" {
  description = "Environment variables shared by the platform's containers."
  type        = map(string)
}

variable "secrets" {
  description = "Secret environment variables shared by the platform's containers (name -> valueFrom)."
  type        = map(string)
}
