variable "project" {
  description = "Short name prefixed to every resource name."
  type        = string
  default     = "fraud-fs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.project))
    error_message = "project must be 2-16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment stage (dev, staging, prod); part of every name and tag."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags added to every resource (cost centre, owner...)."
  type        = map(string)
  default     = {}
}

# ----------------------------------------------------------------------------- network

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into public (load balancer) and private (everything else) subnets."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones to spread subnets, Redis replicas and tasks over (2 or 3 names, e.g. [\"eu-west-1a\", \"eu-west-1b\"]); empty means the region's zones a and b."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3)
    error_message = "availability_zones must name 2 or 3 zones: the load balancer, Redis failover and Multi-AZ RDS need two."
  }
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (VPC flow logs, containers, WAF, Redis)."
  type        = number
  default     = 365
}

# ----------------------------------------------------------------------------- storage

variable "bucket_name" {
  description = "Name of the data bucket (landing/, bronze/, quarantine/, validation/, silver/, mlflow/, predictions/). Globally unique; the code reads it as FRAUD_S3_BUCKET."
  type        = string
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept before it expires (the window to undo a bad rerun)."
  type        = number
  default     = 30
}

# ----------------------------------------------------------------------------- redis

variable "redis_node_type" {
  description = "ElastiCache node type of the online store."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_engine_version" {
  description = "Redis OSS engine version of the online store."
  type        = string
  default     = "7.1"
}

variable "redis_replicas" {
  description = "Read replicas per shard in addition to the primary (1 or more for automatic failover)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_replicas >= 1 && var.redis_replicas <= 5
    error_message = "redis_replicas must be between 1 and 5."
  }
}

# ----------------------------------------------------------------------------- database

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL server (Airflow metadata, MLflow, Feast registry)."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the PostgreSQL server, in GiB (grows automatically up to 5x)."
  type        = number
  default     = 50
}

variable "db_multi_az" {
  description = "Run the PostgreSQL server with a standby in a second zone."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion; set false only to tear an environment down."
  type        = bool
  default     = true
}

# ----------------------------------------------------------------------------- images

variable "api_image" {
  description = "Image of the scoring API (docker/api.Dockerfile), with an immutable tag or digest, e.g. <account>.dkr.ecr.<region>.amazonaws.com/fraud-fs-prod-api:0.1.0. The MLflow server runs the same image."
  type        = string

  validation {
    condition     = !can(regex(":latest$", var.api_image)) && can(regex("[:@]", var.api_image))
    error_message = "api_image must carry a version tag or a digest, never latest."
  }
}

variable "airflow_image" {
  description = "Image of Airflow with the pipelines (docker/airflow.Dockerfile), with an immutable tag or digest."
  type        = string

  validation {
    condition     = !can(regex(":latest$", var.airflow_image)) && can(regex("[:@]", var.airflow_image))
    error_message = "airflow_image must carry a version tag or a digest, never latest."
  }
}

# ----------------------------------------------------------------------------- scoring API

variable "certificate_arn" {
  description = "ARN of the ACM certificate the load balancer's HTTPS listener presents (in the same region)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks allowed to reach the scoring API's HTTPS listener."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "api_cpu" {
  description = "CPU units of one scoring API task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "api_memory" {
  description = "Memory of one scoring API task, in MiB."
  type        = number
  default     = 2048
}

variable "api_min_tasks" {
  description = "Minimum number of scoring API tasks (and the initial count)."
  type        = number
  default     = 2
}

variable "api_max_tasks" {
  description = "Maximum number of scoring API tasks the CPU target-tracking policy may scale to."
  type        = number
  default     = 10
}

variable "api_target_rps" {
  description = "Sustained requests per second the scoring API is sized for, all clients together; the WAF's per-IP rate rule is derived from it."
  type        = number
  default     = 1000
  validation {
    condition     = var.api_target_rps > 0
    error_message = "api_target_rps must be positive."
  }
}

variable "model_name" {
  description = "Registered MLflow model the API serves (FRAUD_MODEL_NAME)."
  type        = string
  default     = "fraud-detector"
}

variable "model_alias" {
  description = "Alias of the model version the API serves (FRAUD_MODEL_ALIAS)."
  type        = string
  default     = "champion"
}

variable "feature_service" {
  description = "Feast feature service new models are trained on (FRAUD_FEATURE_SERVICE); scoring uses the service recorded with the served model version."
  type        = string
  default     = "fraud_detection_v1"
}

variable "api_model_refresh_seconds" {
  description = "How often the API checks whether the model alias has moved, in seconds (FRAUD_MODEL_REFRESH_SECONDS)."
  type        = number
  default     = 30

  validation {
    condition     = var.api_model_refresh_seconds > 0
    error_message = "api_model_refresh_seconds must be positive."
  }
}

variable "api_batch_max_transactions" {
  description = "Most transactions one POST /v1/score/batch request may carry (FRAUD_BATCH_MAX_TRANSACTIONS)."
  type        = number
  default     = 500

  validation {
    condition     = var.api_batch_max_transactions >= 1 && var.api_batch_max_transactions <= 10000
    error_message = "api_batch_max_transactions must be between 1 and 10000 (the API's limit)."
  }
}

variable "api_redis_timeout_seconds" {
  description = "Socket timeout of the API's Redis reads, in seconds (FRAUD_REDIS_TIMEOUT_SECONDS)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.api_redis_timeout_seconds > 0
    error_message = "api_redis_timeout_seconds must be positive."
  }
}

# ----------------------------------------------------------------------------- airflow

variable "airflow_scheduler_cpu" {
  description = "CPU units of the scheduler task, which also runs the pipelines' tasks (LocalExecutor) and Spark in local mode."
  type        = number
  default     = 4096
}

variable "airflow_scheduler_memory" {
  description = "Memory of the scheduler task, in MiB (Spark's driver runs inside it)."
  type        = number
  default     = 16384
}

variable "spark_driver_memory" {
  description = "SPARK_DRIVER_MEMORY of the pipelines; must fit in airflow_scheduler_memory with room for Airflow."
  type        = string
  default     = "8g"
}
