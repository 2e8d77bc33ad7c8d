variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "region" {
  description = "AWS region (for the endpoint service names)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
}

variable "azs" {
  description = "Availability zones to create one public and one private subnet in."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow logs, in days."
  type        = number
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks allowed to reach the load balancer on 443."
  type        = list(string)
}
