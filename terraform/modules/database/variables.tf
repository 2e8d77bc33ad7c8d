variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
}

variable "multi_az" {
  description = "Keep a synchronous standby in a second zone."
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse deletion of the instance."
  type        = bool
}

variable "engine_version" {
  description = "PostgreSQL major version (minor versions are upgraded automatically)."
  type        = string
  default     = "16"
}

variable "backup_retention_days" {
  description = "Days automated backups are kept."
  type        = number
  default     = 14
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the PostgreSQL tier."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the secrets."
  type        = string
}
