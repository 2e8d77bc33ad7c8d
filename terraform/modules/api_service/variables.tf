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

variable "cluster_name" {
  description = "ECS cluster name (for the autoscaling target)."
  type        = string
}

variable "image" {
  description = "Scoring API image with an immutable tag or digest."
  type        = string
}

variable "cpu" {
  description = "CPU units of one task."
  type        = number
}

variable "memory" {
  description = "Memory of one task, in MiB."
  type        = number
}

variable "min_tasks" {
  description = "Minimum (and initial) number of tasks."
  type        = number
}

variable "max_tasks" {
  description = "Maximum number of tasks."
  type        = number
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation the service is scaled to keep."
  type        = number
  default     = 60
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer."
  type        = string
}

variable "security_group_id" {
  description = "Security group of the tasks."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving the load balancer's access logs (under alb/)."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse deletion of the load balancer."
  type        = bool
}

variable "target_rps" {
  description = "Sustained requests per second the service is sized for (all clients); the per-IP rate rule is derived from it."
  type        = number
}

variable "batch_max_txns" {
  description = "Most transactions per batch request (FRAUD_BATCH_MAX_TRANSACTIONS); the API's body cap follows from it."
  type        = number
}

variable "execution_role_arn" {
  description = "ECS task execution role."
  type        = string
}

variable "task_role_arn" {
  description = "Task role of the API."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for logs and the API key secret."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the container and WAF logs, in days."
  type        = number
}

variable "environment" {
  description = "Environment variables shared by the platform's containers."
  type        = map(string)
}

variable "secrets" {
  description = "Secret environment variables shared by the platform's containers (name -> valueFrom)."
  type        = map(string)
}
