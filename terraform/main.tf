# The fraud feature store on AWS:
#   network      VPC, public subnets (load balancer only), private subnets (everything
#                else), S3 gateway and interface endpoints (no NAT, no internet egress),
#                one security group per tier.
#   storage      the data bucket (SSE-KMS, versioned, lifecycle) and its access-log bucket.
#   redis        ElastiCache Redis: Feast's online store (TLS, AUTH, encrypted at rest).
#   database     RDS PostgreSQL: Airflow metadata, MLflow tracking, Feast SQL registry.
#   iam          task roles, each limited to its prefixes of the bucket.
#   api_service  the scoring API on ECS Fargate behind an HTTPS load balancer and a WAF.
#   airflow      Airflow 3 on ECS Fargate (api-server, scheduler, dag-processor, triggerer).
#   mlflow       the MLflow tracking server on ECS Fargate (this file).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# Only the zones named (or the region's first two), so that a zone AWS adds later never
# moves subnets, replicas or the standby database.
data "aws_availability_zones" "selected" {
  state = "available"
  filter {
    name   = "zone-name"
    values = local.requested_azs
  }
}

locals {
  name          = "${var.project}-${var.environment}"
  account_id    = data.aws_caller_identity.current.account_id
  partition     = data.aws_partition.current.partition
  requested_azs = length(var.availability_zones) > 0 ? var.availability_zones : ["${var.region}a", "${var.region}b"]
  azs           = data.aws_availability_zones.selected.names

  # Private DNS names of the internal services (Cloud Map).
  internal_domain = "${local.name}.internal"
  mlflow_url      = "http://mlflow.${local.internal_domain}:5000"
}

# ----------------------------------------------------------------------------- encryption

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policies must name the key itself as "*"; the account root statement delegates to IAM policies, which are scoped per role.
  #checkov:skip=CKV_AWS_111:Same as above: "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_356:Same as above: "*" in a key policy means this key only.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:*"]
    }
  }
}

# One customer-managed key for the platform's data at rest: S3, Redis, RDS, Secrets
# Manager, ECR and CloudWatch Logs.
resource "aws_kms_key" "main" {
  description             = "${local.name}: data at rest of the fraud feature store"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

# ----------------------------------------------------------------------------- modules

module "network" {
  source = "./modules/network"

  name               = local.name
  region             = var.region
  vpc_cidr           = var.vpc_cidr
  azs                = local.azs
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
  api_allowed_cidrs  = var.api_allowed_cidrs
}

module "storage" {
  source = "./modules/storage"

  bucket_name                       = var.bucket_name
  log_bucket_name                   = "${var.bucket_name}-access-logs"
  kms_key_arn                       = aws_kms_key.main.arn
  noncurrent_version_retention_days = var.noncurrent_version_retention_days
}

module "redis" {
  source = "./modules/redis"

  name               = local.name
  node_type          = var.redis_node_type
  engine_version     = var.redis_engine_version
  replicas           = var.redis_replicas
  subnet_ids         = module.network.private_subnet_ids
  security_group_id  = module.network.security_group_ids["redis"]
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
}

module "database" {
  source = "./modules/database"

  name                = local.name
  instance_class      = var.db_instance_class
  allocated_storage   = var.db_allocated_storage_gb
  multi_az            = var.db_multi_az
  deletion_protection = var.deletion_protection
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.network.security_group_ids["postgres"]
  kms_key_arn         = aws_kms_key.main.arn
}

module "iam" {
  source = "./modules/iam"

  name        = local.name
  bucket_arn  = module.storage.bucket_arn
  kms_key_arn = aws_kms_key.main.arn
  secret_arns = concat(
    [module.redis.connection_secret_arn, module.api_service.api_key_secret_arn],
    values(module.database.connection_secret_arns),
    [module.airflow.secret_arn, module.database.master_user_secret_arn],
  )
}

# ----------------------------------------------------------------------------- containers

resource "aws_ecr_repository" "this" {
  for_each = toset(["api", "airflow"])

  name                 = "${local.name}-${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 most recent images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 50 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "ecs_exec" {
  name              = "/ecs/${local.name}/exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_cluster" "main" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.main.arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.ecs_exec.name
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_service_discovery_private_dns_namespace" "internal" {
  name        = local.internal_domain
  description = "Private names of the internal services (Airflow API server, MLflow)"
  vpc         = module.network.vpc_id
}

# Settings every container of the platform shares. S3 goes through the task role (no keys)
# and the regional endpoint (no endpoint override, no MinIO health path).
locals {
  common_environment = {
    AWS_REGION          = var.region
    FRAUD_S3_BUCKET     = module.storage.bucket_name
    S3_HEALTHCHECK_PATH = ""
    MLFLOW_TRACKING_URI = local.mlflow_url
    FRAUD_MODEL_NAME    = var.model_name
    FRAUD_MODEL_ALIAS   = var.model_alias
    # Secrets holding a .env.example placeholder are refused outside "local".
    FRAUD_ENVIRONMENT = var.environment
  }
  common_secrets = {
    REDIS_CONNECTION_STRING = "${module.redis.connection_secret_arn}:connection_string::"
    FEAST_REGISTRY_PATH     = "${module.database.connection_secret_arns["feast"]}:url::"
  }
}

module "api_service" {
  source = "./modules/api_service"

  name                  = local.name
  region                = var.region
  cluster_arn           = aws_ecs_cluster.main.arn
  cluster_name          = aws_ecs_cluster.main.name
  image                 = var.api_image
  cpu                   = var.api_cpu
  memory                = var.api_memory
  min_tasks             = var.api_min_tasks
  max_tasks             = var.api_max_tasks
  vpc_id                = module.network.vpc_id
  public_subnet_ids     = module.network.public_subnet_ids
  private_subnet_ids    = module.network.private_subnet_ids
  alb_security_group_id = module.network.security_group_ids["alb"]
  security_group_id     = module.network.security_group_ids["api"]
  certificate_arn       = var.certificate_arn
  access_log_bucket     = module.storage.log_bucket_name
  deletion_protection   = var.deletion_protection
  target_rps            = var.api_target_rps
  batch_max_txns        = var.api_batch_max_transactions
  execution_role_arn    = module.iam.execution_role_arn
  task_role_arn         = module.iam.task_role_arns["api"]
  kms_key_arn           = aws_kms_key.main.arn
  log_retention_days    = var.log_retention_days
  environment = merge(local.common_environment, {
    FRAUD_MODEL_REFRESH_SECONDS  = tostring(var.api_model_refresh_seconds)
    FRAUD_BATCH_MAX_TRANSACTIONS = tostring(var.api_batch_max_transactions)
    FRAUD_REDIS_TIMEOUT_SECONDS  = tostring(var.api_redis_timeout_seconds)
  })
  secrets = local.common_secrets
}

module "airflow" {
  source = "./modules/airflow"

  name                = local.name
  region              = var.region
  cluster_arn         = aws_ecs_cluster.main.arn
  image               = var.airflow_image
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.network.security_group_ids["airflow"]
  namespace_id        = aws_service_discovery_private_dns_namespace.internal.id
  internal_domain     = local.internal_domain
  execution_role_arn  = module.iam.execution_role_arn
  task_role_arn       = module.iam.task_role_arns["pipelines"]
  kms_key_arn         = aws_kms_key.main.arn
  log_retention_days  = var.log_retention_days
  metadata_db_secret  = module.database.connection_secret_arns["airflow"]
  scheduler_cpu       = var.airflow_scheduler_cpu
  scheduler_memory    = var.airflow_scheduler_memory
  spark_driver_memory = var.spark_driver_memory
  # Scoring uses the feature service recorded with the model; only training reads this.
  environment = merge(local.common_environment, {
    FRAUD_FEATURE_SERVICE = var.feature_service
  })
  secrets = local.common_secrets
}

# The MLflow tracking server and model registry: the API image, metadata in PostgreSQL.
# Training creates the experiment with the artifact location s3://<bucket>/mlflow, so
# clients (training, the API, batch scoring) read and write artifacts there with their own
# task roles; the server reads them for its UI, and --artifacts-destination only serves
# runs of experiments created without a location.
module "mlflow" {
  source = "./modules/ecs_service"

  name               = "${local.name}-mlflow"
  region             = var.region
  cluster_arn        = aws_ecs_cluster.main.arn
  image              = var.api_image
  cpu                = 1024
  memory             = 2048
  desired_count      = 1
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.security_group_ids["mlflow"]]
  execution_role_arn = module.iam.execution_role_arn
  task_role_arn      = module.iam.task_role_arns["mlflow"]
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
  container_port     = 5000
  namespace_id       = aws_service_discovery_private_dns_namespace.internal.id
  discovery_name     = "mlflow"
  command = [
    "mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--workers", "4",
    "--artifacts-destination", "s3://${module.storage.bucket_name}/mlflow",
    "--allowed-hosts", "mlflow.${local.internal_domain},mlflow.${local.internal_domain}:*,localhost:*,127.0.0.1:*",
  ]
  environment = {
    AWS_REGION = var.region
  }
  secrets = {
    MLFLOW_BACKEND_STORE_URI = "${module.database.connection_secret_arns["mlflow"]}:url::"
  }
  health_check_command = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
}

# One-off: creates the airflow, mlflow and feast roles and databases on the PostgreSQL
# server with docker/postgres/init-databases.sh (baked into the Airflow image), the same
# script the compose stack runs. Idempotent; `aws ecs run-task` once after the first apply
# (README.md). Only the master secret and the three role secrets reach it.
module "db_init" {
  source = "./modules/ecs_service"

  name                     = "${local.name}-db-init"
  region                   = var.region
  cluster_arn              = aws_ecs_cluster.main.arn
  image                    = var.airflow_image
  command                  = ["bash", "/opt/fraud/scripts/init-databases.sh"]
  cpu                      = 256
  memory                   = 512
  desired_count            = 0
  create_service           = false
  subnet_ids               = module.network.private_subnet_ids
  security_group_ids       = [module.network.security_group_ids["airflow"]]
  execution_role_arn       = module.iam.execution_role_arn
  task_role_arn            = module.iam.task_role_arns["pipelines"]
  kms_key_arn              = aws_kms_key.main.arn
  log_retention_days       = var.log_retention_days
  readonly_root_filesystem = false
  writable_paths           = []
  environment = {
    PGHOST                     = module.database.address
    PGSSLMODE                  = "require"
    POSTGRES_USER              = "postgres"
    POSTGRES_DB                = "postgres"
    CONNECTION_CHECK_MAX_COUNT = "0"
  }
  secrets = {
    PGPASSWORD          = "${module.database.master_user_secret_arn}:password::"
    AIRFLOW_DB_PASSWORD = "${module.database.connection_secret_arns["airflow"]}:password::"
    MLFLOW_DB_PASSWORD  = "${module.database.connection_secret_arns["mlflow"]}:password::"
    FEAST_DB_PASSWORD   = "${module.database.connection_secret_arns["feast"]}:password::"
  }
}
