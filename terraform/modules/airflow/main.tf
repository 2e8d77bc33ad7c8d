# Airflow 3.3.2 on ECS Fargate, from the project's own image (the pipelines, a JRE and
# Spark's s3a jars inside): api-server, scheduler (LocalExecutor: it runs the tasks),
# dag-processor and triggerer as services, and airflow-init as a one-off task that
# migrates the metadata database and creates the admin user.
# Why not MWAA: see terraform/README.md.

resource "random_id" "fernet_key" {
  byte_length = 32
}

resource "random_password" "jwt_secret" {
  length  = 64
  special = false
}

resource "random_password" "admin" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "airflow" {
  #checkov:skip=CKV2_AWS_57:Rotating the Fernet key needs `airflow rotate-fernet-key` with old and new keys side by side; it is a manual, documented procedure.
  name        = "${var.name}/airflow"
  description = "Fernet key, API JWT secret and admin password of Airflow"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "airflow" {
  secret_id = aws_secretsmanager_secret.airflow.id
  secret_string = jsonencode({
    # Fernet wants URL-safe base64 of 32 bytes, padded.
    fernet_key     = "${random_id.fernet_key.b64_url}="
    jwt_secret     = random_password.jwt_secret.result
    admin_password = random_password.admin.result
  })
}

locals {
  secret = aws_secretsmanager_secret.airflow.arn

  environment = merge(var.environment, {
    AIRFLOW__CORE__EXECUTOR                    = "LocalExecutor"
    AIRFLOW__CORE__AUTH_MANAGER                = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    AIRFLOW__CORE__EXECUTION_API_SERVER_URL    = "http://airflow-apiserver.${var.internal_domain}:8080/execution/"
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION = "true"
    AIRFLOW__CORE__LOAD_EXAMPLES               = "false"
    AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK    = "true"
    AIRFLOW__API__EXPOSE_CONFIG                = "false"
    SPARK_MASTER                               = "local[*]"
    SPARK_DRIVER_MEMORY                        = var.spark_driver_memory
    # The Feast repo baked into the image (docker/airflow.Dockerfile); the installed
    # packages cannot find it beside themselves.
    FEAST_REPO_PATH = "/opt/airflow/feature_repo"
  })

  secrets = merge(var.secrets, {
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN = "${var.metadata_db_secret}:url::"
    AIRFLOW__CORE__FERNET_KEY           = "${local.secret}:fernet_key::"
    AIRFLOW__API_AUTH__JWT_SECRET       = "${local.secret}:jwt_secret::"
  })

  components = {
    apiserver = {
      command      = ["api-server"]
      cpu          = 1024
      memory       = 2048
      port         = 8080
      health_check = ["CMD", "curl", "--fail", "--silent", "http://localhost:8080/api/v2/version"]
    }
    scheduler = {
      command      = ["scheduler"]
      cpu          = var.scheduler_cpu
      memory       = var.scheduler_memory
      port         = null
      health_check = ["CMD", "curl", "--fail", "--silent", "http://localhost:8974/health"]
    }
    dag-processor = {
      command      = ["dag-processor"]
      cpu          = 1024
      memory       = 2048
      port         = null
      health_check = ["CMD-SHELL", "airflow jobs check --job-type DagProcessorJob --hostname \"$HOSTNAME\""]
    }
    triggerer = {
      command      = ["triggerer"]
      cpu          = 512
      memory       = 1024
      port         = null
      health_check = ["CMD-SHELL", "airflow jobs check --job-type TriggererJob --hostname \"$HOSTNAME\""]
    }
  }
}

module "component" {
  source   = "../ecs_service"
  for_each = local.components

  name                   = "${var.name}-airflow-${each.key}"
  region                 = var.region
  cluster_arn            = var.cluster_arn
  image                  = var.image
  command                = each.value.command
  cpu                    = each.value.cpu
  memory                 = each.value.memory
  desired_count          = 1
  container_port         = each.value.port
  subnet_ids             = var.subnet_ids
  security_group_ids     = [var.security_group_id]
  execution_role_arn     = var.execution_role_arn
  task_role_arn          = var.task_role_arn
  kms_key_arn            = var.kms_key_arn
  log_retention_days     = var.log_retention_days
  environment            = local.environment
  secrets                = local.secrets
  health_check_command   = each.value.health_check
  namespace_id           = each.key == "apiserver" ? var.namespace_id : null
  discovery_name         = each.key == "apiserver" ? "airflow-apiserver" : null
  enable_execute_command = true
  # Airflow writes its generated config, logs and Spark's scratch space under
  # AIRFLOW_HOME and /tmp; the container's root file system is ephemeral on Fargate.
  readonly_root_filesystem = false
  writable_paths           = []
}

# One-off: `aws ecs run-task` after each upgrade (README.md). Migrates the metadata
# database and creates the admin user, then exits.
module "init" {
  source = "../ecs_service"

  name                     = "${var.name}-airflow-init"
  region                   = var.region
  cluster_arn              = var.cluster_arn
  image                    = var.image
  command                  = ["version"]
  cpu                      = 1024
  memory                   = 2048
  desired_count            = 0
  create_service           = false
  subnet_ids               = var.subnet_ids
  security_group_ids       = [var.security_group_id]
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn
  kms_key_arn              = var.kms_key_arn
  log_retention_days       = var.log_retention_days
  readonly_root_filesystem = false
  writable_paths           = []
  environment = merge(local.environment, {
    _AIRFLOW_DB_MIGRATE        = "true"
    _AIRFLOW_WWW_USER_CREATE   = "true"
    _AIRFLOW_WWW_USER_USERNAME = var.admin_username
  })
  secrets = merge(local.secrets, {
    _AIRFLOW_WWW_USER_PASSWORD = "${local.secret}:admin_password::"
  })
}
