variable "bucket_name" {
  description = "Name of the data bucket."
  type        = string
}

variable "log_bucket_name" {
  description = "Name of the bucket receiving S3 server access logs and load balancer access logs."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the data bucket."
  type        = string
}

variable "noncurrent_version_retention_days" {
  description = "Days a noncurrent object version is kept."
  type        = number
}

variable "access_log_retention_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 365
}
