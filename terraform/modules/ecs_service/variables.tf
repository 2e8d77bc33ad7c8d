variable "name" {
  description = "Name of the service, its task family, container and log group."
  type        = string
}

variable "region" {
  description = "AWS region (for the log driver)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster the service runs in."
  type        = string
}

variable "image" {
  description = "Container image with an immutable tag or digest."
  type        = string
}

variable "command" {
  description = "Command of the container; null keeps the image's CMD."
  type        = list(string)
  default     = null
}

variable "cpu" {
  description = "CPU units of the task (1024 = 1 vCPU)."
  type        = number
}

variable "memory" {
  description = "Memory of the task, in MiB."
  type        = number
}

variable "desired_count" {
  description = "Number of tasks the service keeps running."
  type        = number
}

variable "create_service" {
  description = "Create a service; false registers the task definition only (one-off jobs run with `aws ecs run-task`)."
  type        = bool
  default     = true
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "execution_role_arn" {
  description = "Role ECS uses to pull the image, write logs and read the secrets."
  type        = string
}

variable "task_role_arn" {
  description = "Role the application runs with."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the log group, in days."
  type        = number
}

variable "container_port" {
  description = "Port the container listens on; null for workers without one."
  type        = number
  default     = null
}

variable "environment" {
  description = "Plain environment variables of the container."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables read from Secrets Manager: name -> valueFrom (secret ARN, optionally :json-key::)."
  type        = map(string)
  default     = {}
}

variable "health_check_command" {
  description = "Container health check, e.g. [\"CMD\", \"curl\", \"--fail\", \"http://localhost:8080/health\"]; null for none."
  type        = list(string)
  default     = null
}

variable "readonly_root_filesystem" {
  description = "Run the container with a read-only root file system (writable_paths stay writable)."
  type        = bool
  default     = true
}

variable "writable_paths" {
  description = "Paths given a writable task-scoped volume; the root file system is read-only."
  type        = list(string)
  default     = ["/tmp"]
}

variable "user" {
  description = "User (uid:gid) the container runs as; null keeps the image's USER."
  type        = string
  default     = null
}

variable "target_group_arn" {
  description = "Load balancer target group to register the tasks in; null for none."
  type        = string
  default     = null
}

variable "namespace_id" {
  description = "Cloud Map private DNS namespace to register the service in; null for none."
  type        = string
  default     = null
}

variable "discovery_name" {
  description = "Name registered in the namespace (<name>.<namespace>)."
  type        = string
  default     = null
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into the tasks (needs the SSM channel permissions on the task role)."
  type        = bool
  default     = false
}

variable "health_check_grace_period_seconds" {
  description = "Seconds the load balancer's health checks are ignored after a task starts."
  type        = number
  default     = 60
}
