variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
}

variable "replicas" {
  description = "Read replicas in addition to the primary."
  type        = number
}

variable "subnet_ids" {
  description = "Private subnets the nodes are placed in (one zone each)."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the Redis tier."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for data at rest, the AUTH secret and the slow log."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the slow-log group, in days."
  type        = number
}
